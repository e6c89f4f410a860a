"""The multi-attribute reward task (`--task attributes`): it trains through the trainer core on pairs and on graded
responses, masks what was not rated, combines its attributes (fixed, fitted, gated, length-decorrelated), reports
every attribute in `accord score`, and refuses bad ratings with one clear error on both command-line paths."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import disk_full_while_writing, logged_sums
from accord.cli import main as accord_main
from accord.datasets import AccordError, ValidationError
from accord.datasets.cleaned_attributes import read_attribute_cleaned
from accord.reward import RewardConfig, RewardTrainer, evaluate, score
from accord.reward.attribute_combination import FittedWeights, FixedWeights, GatingNetwork, combination_from_dict
from accord.reward.attributes import predict_attributes
from accord.reward.task import model_inputs
from accord.reward.tiny import build_tiny_backbone

torch.set_num_threads(1)

# attribute k of a response is carried by one word: GOOD[k] (better) or BAD[k] (worse)
ATTRIBUTES = ("helpful", "correct", "concise")
GOOD = ("helpful", "correct", "short")
BAD = ("useless", "wrong", "rambling")
FILLER = "the a answer question cat dog sat on mat water".split()


def response_text(rng: np.random.Generator, good: np.ndarray) -> str:
    words = [GOOD[k] if good[k] else BAD[k] for k in range(len(ATTRIBUTES))]
    words += list(rng.choice(FILLER, int(rng.integers(2, 6))))
    return " ".join(rng.permutation(words))


def attribute_pairs(n: int, seed: int, observed: float = 1.0) -> pd.DataFrame:
    """Pairs with ``p_chosen_<a>`` 0.9/0.1 (NaN for a share ``1 - observed`` of the last attribute), ``weight_<a>``
    and a property of the pair, ``slack_mean`` (1 when the rejected side rambles), on 0..1."""
    rng = np.random.default_rng(seed)
    wins = rng.random((n, len(ATTRIBUTES))) < 0.5
    frame = pd.DataFrame({"prompt": [" ".join(rng.choice(FILLER, 3)) for _ in range(n)],
                          "chosen": [response_text(rng, w) for w in wins],
                          "rejected": [response_text(rng, ~w) for w in wins]})
    labels = np.where(wins, 0.9, 0.1)
    labels[rng.random(n) >= observed, -1] = np.nan
    for k, name in enumerate(ATTRIBUTES):
        frame[f"p_chosen_{name}"] = labels[:, k]
        frame[f"weight_{name}"] = 0.8
    frame["slack_mean"] = wins[:, 2].astype(float)
    return frame


def graded_responses(n: int, seed: int) -> pd.DataFrame:
    """Responses rated 0..4 per attribute: 3.5 with the good word, 0.5 with the bad one; ``<a>_sd`` 0.3."""
    rng = np.random.default_rng(seed)
    good = rng.random((n, len(ATTRIBUTES))) < 0.5
    frame = pd.DataFrame({"prompt": ["q"] * n, "response": [response_text(rng, g) for g in good]})
    for k, name in enumerate(ATTRIBUTES):
        frame[f"{name}_mean"] = np.where(good[:, k], 3.5, 0.5)
        frame[f"{name}_sd"] = 0.3
    frame.attrs["accord"] = {"scales": {a: [0, 4] for a in ATTRIBUTES}}  # a plain table with declared scales
    return frame


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    words = " ".join(GOOD + BAD + tuple(FILLER) + ("q",))
    return str(build_tiny_backbone(tmp_path_factory.mktemp("attributes") / "bert", "bert", texts=[words], seed=1))


def config(bert, tmp_path, name, **overrides) -> RewardConfig:
    values = dict(model=bert, output_dir=str(tmp_path / name), task="attributes", batch_size=8, learning_rate=3e-3,
                  save_steps=None, logging_steps=2, progress=False, loss="weighted_soft_bce", stats_max_pairs=16)
    values.update(overrides)
    return RewardConfig(**values)


def logged_losses(folder) -> list[float]:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if "loss" in json.loads(line)]


def test_pairwise_attributes_and_a_pair_property_train_through_the_core(bert, tmp_path):
    cfg = config(bert, tmp_path, "pairs", num_epochs=4)
    trainer = RewardTrainer(cfg, train_data=attribute_pairs(96, seed=0, observed=0.5),
                            eval_data=attribute_pairs(64, seed=1))
    assert trainer.unwrapped().head.out_features == 4  # three preferences and one property, one forward pass
    result = trainer.train()
    losses = logged_losses(tmp_path / "pairs")
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    metrics = result.eval_metrics
    assert all(metrics[f"accuracy_{name}"] >= 0.9 for name in ATTRIBUTES), metrics  # the half-rated one included
    assert metrics["f1_slack"] >= 0.9, metrics
    meta = json.loads((tmp_path / "pairs" / "reward_model.json").read_text())
    assert meta["task"] == "attributes" and meta["attributes"]["kinds"] == ["preference"] * 3 + ["property"]
    assert meta["attributes"]["offsets"][3] == pytest.approx(0.0, abs=0.5)  # logit of a prevalence near 1/2


def test_graded_attributes_train_with_a_gaussian_likelihood(bert, tmp_path):
    cfg = config(bert, tmp_path, "responses", num_epochs=6)
    result = RewardTrainer(cfg, train_data=graded_responses(96, seed=2), eval_data=graded_responses(48, seed=3)).train()
    losses = logged_losses(tmp_path / "responses")
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
    assert all(result.eval_metrics[f"spearman_{name}"] >= 0.8 for name in ATTRIBUTES), result.eval_metrics


def test_a_missing_attribute_contributes_no_gradient(bert, tmp_path):
    frame = attribute_pairs(16, seed=4)
    frame.loc[0, "p_chosen_correct"] = np.nan
    frame.loc[1, "slack_mean"] = np.nan
    cfg = config(bert, tmp_path, "mask", max_steps=1)
    trainer = RewardTrainer(cfg, train_data=frame)
    task, model = trainer.task, trainer.unwrapped()
    indices = np.arange(8)
    step = task.step_context(trainer.train_data, indices)
    assert step["rated"].tolist() == [8, 7, 8, 7]
    outputs = []

    def keep(_module, _args, out):
        out.retain_grad()
        outputs.append(out)

    hook = model.head.register_forward_hook(keep)
    loss, _ = task.compute_loss(model, task.collate(trainer.train_data, indices), step)
    loss.backward()
    hook.remove()
    grad = outputs[0].grad  # rows: the 8 chosen sequences, then the 8 rejected ones
    for row, column in ((0, 1), (1, 3)):
        assert grad[row, column] == 0 and grad[8 + row, column] == 0
    assert (grad[2:8] != 0).all() and (grad[10:] != 0).all()


def test_the_step_loss_does_not_depend_on_how_the_step_is_split(bert, tmp_path):
    frame = attribute_pairs(32, seed=8, observed=0.5)
    frame["weight_helpful"] = np.linspace(0.1, 1.0, len(frame))  # weights normalised over the whole step
    common = dict(max_steps=2, group_by_length=False, adam_epsilon=1.0)  # large eps: updates linear in the gradient
    states = []
    for name, size, accumulation in (("one-batch", 8, 1), ("accumulated", 4, 2)):
        cfg = config(bert, tmp_path, name, batch_size=size, gradient_accumulation_steps=accumulation, **common)
        trainer = RewardTrainer(cfg, train_data=frame)
        trainer.train()
        states.append({k: v.detach().clone() for k, v in trainer.unwrapped().state_dict().items()})
    for key in states[0]:
        assert torch.allclose(states[0][key], states[1][key], atol=1e-6), key


@settings(max_examples=8, deadline=None)
@given(st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3))
def test_fitted_weights_recover_the_weights_that_made_the_overall_labels(weights):
    rng = np.random.default_rng(0)
    differences = rng.normal(size=(4000, 3))
    target = rng.random(4000) < 1.0 / (1.0 + np.exp(-differences @ np.array(weights)))
    fitted = FittedWeights(["a", "b", "c"], alpha=1.0).fit(differences, target.astype(float))
    assert np.allclose(fitted.coef_, weights, atol=0.25), (fitted.coef_, weights)
    restored = combination_from_dict(json.loads(json.dumps(fitted.to_dict())), ["a", "b", "c"])
    assert np.allclose(restored.combine(differences), fitted.combine(differences))


@pytest.mark.parametrize("make", [
    lambda: FixedWeights({"a": float("nan")}, ["a", "b"]),  # `accord combine --weights a=nan`
    lambda: FixedWeights({"a": float("inf")}, ["a", "b"]),
    lambda: FittedWeights(["a", "b"], alpha=-1.0),  # a negative penalty rewards large weights
    lambda: FittedWeights(["a", "b"], alpha=float("nan")),
    lambda: GatingNetwork(["a", "b"], hidden=0),
])
def test_combination_settings_that_give_nonsense_are_refused(make):
    # each of these fitted or combined without a word into NaN, inf or sign-flipped weights
    with pytest.raises(AccordError):
        make()


@pytest.mark.parametrize("method, flag", [("gating", ["--alpha", "5"]), ("fixed", ["--alpha", "5"]),
                                          ("fitted", ["--hidden", "8"]), ("fixed", ["--hidden", "8"])])
def test_combine_refuses_a_setting_the_method_does_not_read(method, flag, tmp_path, capsys):
    """``accord combine --method gating --alpha 5`` (or fitted with --hidden) fitted with the default and said
    nothing: each setting belongs to one method."""
    weights = ["--weights", "a=1"] if method == "fixed" else []
    capsys.readouterr()
    assert accord_main(["combine", str(tmp_path), str(tmp_path / "pairs.jsonl"), "--method", method, *weights,
                        *flag, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{flag[0]}: only --method" in err and method in err, err


@pytest.mark.parametrize("method, flag, setting", [("fitted", ["--alpha", "5"], {"alpha": 5.0}),
                                                   ("gating", ["--hidden", "8"], {"hidden": 8}),
                                                   ("fitted", [], {})])
def test_combine_passes_the_settings_given_and_leaves_the_defaults_to_fit_combination(method, flag, setting,
                                                                                     tmp_path, monkeypatch):
    import accord.reward.attribute_combination as combination
    from accord.reward.model import RewardModel

    seen = {}

    def fit_combination(model_dir, data, method, **kwargs):
        seen.update(kwargs)
        raise AccordError("stop here")

    monkeypatch.setattr(RewardModel, "read_meta", staticmethod(lambda _: {"task": "attributes"}))
    monkeypatch.setattr(combination, "fit_combination", fit_combination)
    assert accord_main(["combine", str(tmp_path), str(tmp_path / "pairs.jsonl"), "--method", method, *flag]) == 2
    assert {k: seen[k] for k in ("alpha", "hidden") if k in seen} == setting


def declared(frame: pd.DataFrame) -> pd.DataFrame:
    frame.attrs["accord"] = {"scales": {"help": [0, 4]}}
    return frame


@pytest.mark.parametrize("table", [
    pd.DataFrame({"response": ["a", "b"], "help_mean": [1.0, np.inf]}),  # OverflowError inferring the scale
    declared(pd.DataFrame({"response": ["a", "b"], "help_mean": [1.0, np.inf]})),  # trained on inf
    pd.DataFrame({"chosen": ["a", "b"], "rejected": ["c", "d"], "p_chosen_help": [0.5, np.inf]}),  # trained on inf
])
def test_an_infinite_attribute_value_is_one_line_naming_its_row(table):
    from accord.reward.attributes import attribute_labels, attribute_spec, read_attribute_table

    with pytest.raises(ValidationError, match="row 1: must be a finite number"):
        frame, meta = read_attribute_table(table)
        attribute_labels(frame, attribute_spec(frame, meta))


@pytest.mark.parametrize(("layout", "column", "count"), [("pairs", "p_chosen_help", "n_help"),
                                                          ("pairs", "weight_help", "n_help"),
                                                          ("responses", "help_mean", "help_n"),
                                                          ("responses", "help_sd", "help_n")])
def test_a_nan_label_is_masked_in_a_plain_table_and_in_a_cleaned_file_an_error_saying_how_to_mark_it(
        layout, column, count, tmp_path):
    """The README said NaN labels are masked, but a cleaned file refused one as "must be a probability in [0, 1]
    (value: nan)" (or "must lie on the attribute's scale"): the layouts mark an unrated attribute by a count of 0
    and an imputed value. A plain table masks a NaN label; a cleaned file's NaN is one line naming the file, column
    and row, saying it is missing and how the layout marks it."""
    from accord.aggregate import clean_attributes
    from accord.datasets import validate_attributes
    from accord.datasets.cleaned import write_with_provenance
    from accord.reward.attributes import attribute_labels, attribute_spec, read_attribute_table

    ratings = pd.DataFrame({"response_id": ["r1", "r1", "r2", "r2", "r3", "r3"], "annotator": ["a", "b"] * 3,
                            "attribute": "help", "label": [1, 2, 3, 3, 0, 1], "prompt": "q",
                            "response": ["x", "x", "y", "y", "z", "z"]})
    result = clean_attributes(validate_attributes(ratings, scales=(0, 4)), method="attribute-mean")
    table = (result.pairs if layout == "pairs" else result.responses).copy()
    table[column] = table[column].astype(float)
    table.loc[1, column] = np.nan
    path = write_with_provenance(table, tmp_path / "cleaned.parquet", dict(table.attrs["accord"]))
    with pytest.raises(ValidationError, match=rf"cleaned.parquet.*column '{column}', row 1: missing \(NaN\).*"
                                              rf"{count} = 0") as caught:
        read_attribute_table(path)
    assert "\n" not in str(caught.value)
    plain = table.copy()
    plain.attrs = {}
    frame, meta = read_attribute_table(plain)
    if column in ("p_chosen_help", "help_mean"):  # the labels (a NaN weight is 1, a NaN sd 0)
        labels = attribute_labels(frame, attribute_spec(frame, meta))[0]
        assert np.isnan(labels[1]).all() and np.isfinite(np.delete(labels, 1, axis=0)).all()


def test_an_attribute_without_any_rating_and_without_a_scale_is_one_line():
    # the scale was inferred from the ratings: floor(NaN) raised ValueError
    from accord.reward.attributes import attribute_spec, read_attribute_table

    frame, meta = read_attribute_table(pd.DataFrame({"response": ["a", "b"], "help_mean": [np.nan, np.nan]}))
    with pytest.raises(ValidationError, match="column 'help_mean'.*declare"):
        attribute_spec(frame, meta)


def test_a_gating_network_learns_which_attribute_each_kind_of_prompt_needs():
    rng = np.random.default_rng(1)
    n = 3000
    kind = rng.integers(0, 2, n)  # two kinds of prompt: the first cares about attribute 0, the second about 1
    embedding = np.column_stack([kind + 0.1 * rng.normal(size=n), rng.normal(size=(n, 3))])
    differences = rng.normal(size=(n, 2))
    target = (np.where(kind == 0, differences[:, 0], differences[:, 1]) > 0).astype(float)
    train, test = slice(0, 2000), slice(2000, n)
    gating = GatingNetwork(["a", "b"], hidden=16, max_steps=300).fit(embedding[train], differences[train],
                                                                    target[train])
    fitted = FittedWeights(["a", "b"]).fit(differences[train], target[train])
    accuracy = {name: float(((c.combine(differences[test], embedding=embedding[test]) > 0) == target[test]).mean())
                for name, c in (("gating", gating), ("fitted", fitted))}
    assert accuracy["gating"] > accuracy["fitted"] + 0.1, accuracy
    weights = gating.weights(embedding[test], n - 2000)
    assert weights[kind[test] == 0, 0].mean() > weights[kind[test] == 0, 1].mean()
    assert weights[kind[test] == 1, 1].mean() > weights[kind[test] == 1, 0].mean()


def test_length_decorrelation_removes_each_attributes_linear_dependence_on_length():
    rng = np.random.default_rng(2)
    lengths = rng.integers(5, 200, 500).astype(float)
    rewards = np.column_stack([0.02 * lengths + rng.normal(size=500), rng.normal(size=500)])
    combination = FixedWeights({"a": 1.0, "b": 1.0}, ["a", "b"], decorrelate_length=True).fit_length(rewards, lengths)
    corrected = combination.corrected(rewards, lengths)
    assert abs(np.corrcoef(rewards[:, 0], lengths)[0, 1]) > 0.5
    assert np.abs([np.corrcoef(corrected[:, k], lengths)[0, 1] for k in range(2)]).max() < 1e-8


def test_score_reports_every_attribute_and_the_combined_reward(bert, tmp_path):
    cfg = config(bert, tmp_path, "scored", max_steps=4, uncertainty_head=True)
    RewardTrainer(cfg, train_data=attribute_pairs(32, seed=5)).train()
    responses = pd.DataFrame({"prompt": ["q", "q"], "response": ["helpful correct short", "useless wrong rambling"]})
    scored = score(cfg.output_dir, responses)
    for name in (*ATTRIBUTES, "slack"):
        assert {f"reward_{name}", f"reward_sd_{name}"} <= set(scored.columns)
    assert {"reward", "reward_sd", "reward_normalised", "conservative_reward"} <= set(scored.columns)
    # the default combination: equal weights on the three preferences (the property is no reward)
    mean = scored[[f"reward_{name}" for name in ATTRIBUTES]].mean(axis=1)
    assert np.allclose(scored["reward"], mean)
    # fixed weights from the command line replace it
    assert accord_main(["combine", cfg.output_dir, "--method", "fixed", "--weights", "helpful=2,concise=-1"]) == 0
    scored = score(cfg.output_dir, responses)
    assert np.allclose(scored["reward"], 2 * scored["reward_helpful"] - scored["reward_concise"])
    pairs = attribute_pairs(4, seed=6)[["prompt", "chosen", "rejected"]]
    both = score(cfg.output_dir, pairs)
    assert {"p_chosen_helpful_model", "p_slack_model", "p_chosen_model", "reward_chosen", "reward_rejected",
            "reward_helpful_rejected"} <= set(both.columns)


def test_score_s_pair_probabilities_read_the_uncertainty_head_as_training_does(bert, tmp_path):
    """With an uncertainty head the model's log-odds that chosen is better on an attribute is the variance-scaled
    difference ``(r_c - r_r) / sqrt(1 + pi (var_c + var_r) / 8)`` (what training fits and accord evaluate reads, as
    the pairwise task's p_chosen_model). `accord score` of pairs left the variances out, so p_chosen_<a>_model and
    p_<a>_model were more confident than the model. Now they are computed from the reported rewards and sds."""
    cfg = config(bert, tmp_path, "uncertain", max_steps=2, uncertainty_head=True)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    scored = score(cfg.output_dir, attribute_pairs(6, seed=6)[["prompt", "chosen", "rejected"]])
    meta = json.loads((tmp_path / "uncertain" / "reward_model.json").read_text())["attributes"]
    for name, kind, offset in zip(meta["names"], meta["kinds"], meta["offsets"]):
        difference = scored[f"reward_{name}_chosen"] - scored[f"reward_{name}_rejected"]
        variance = scored[f"reward_sd_{name}_chosen"] ** 2 + scored[f"reward_sd_{name}_rejected"] ** 2
        logit = difference / np.sqrt(1.0 + np.pi / 8.0 * variance) + (offset if kind == "property" else 0.0)
        column = f"p_{name}_model" if kind == "property" else f"p_chosen_{name}_model"
        np.testing.assert_allclose(scored[column], 1.0 / (1.0 + np.exp(-logit)), rtol=1e-6, err_msg=column)


def test_k_of_a_multi_attribute_model_without_an_uncertainty_head_names_the_flag(bert, tmp_path, capsys, monkeypatch):
    """Was: 'k: ... to use k' on the command line, where --k was typed, and only after the model had loaded. Now the
    flag is named, before the weights load (as the pairwise score refuses it)."""
    import importlib

    evaluate_module = importlib.import_module("accord.reward.evaluate")  # the module, not accord.reward.evaluate()
    cfg = config(bert, tmp_path, "no-head", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    responses = tmp_path / "responses.jsonl"
    pd.DataFrame({"response": ["helpful correct short"]}).to_json(responses, orient="records", lines=True)

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(evaluate_module, "load_model", no_loading)
    capsys.readouterr()
    assert accord_main(["score", cfg.output_dir, str(responses), "--k", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("accord: error: --k: ") and "no uncertainty head" in err and err.endswith("--k"), err


def test_score_says_when_max_length_cuts_the_responses_as_the_pairwise_score_does(bert, tmp_path):
    """Was: `accord score` of a multi-attribute model read only the beginning of responses --max-length cut, without
    a word, where the pairwise score counts them in a warning. Now it warns too (once: evaluate, which scores the
    combined reward with it, says nothing of the score's)."""
    import warnings

    cfg = config(bert, tmp_path, "cut", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    long = " ".join(["helpful correct short answer"] * 4)
    responses = pd.DataFrame({"prompt": ["q", "q"], "response": [long, "useless"]})
    with pytest.warns(UserWarning, match="score: 1 of the 2 responses did not fit max_length 12"):
        score(cfg.output_dir, responses, max_length=12)
    pairs = attribute_pairs(3, seed=6)[["prompt", "chosen", "rejected"]]
    pairs.loc[0, "chosen"] = long
    with pytest.warns(UserWarning, match=r"score: \d of the 6 responses of the pairs did not fit max_length 12"):
        score(cfg.output_dir, pairs, max_length=12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate(cfg.output_dir, pairs.assign(p_chosen=0.8, p_chosen_helpful=0.9), max_length=12)
    assert not [w for w in caught if "score:" in str(w.message)], [str(w.message) for w in caught]


def test_combine_says_once_when_the_saved_max_length_cut_the_pairs_it_fits_on(bert, tmp_path, capsys):
    """`accord combine` fitted its weights on the rewards of responses the saved model's max_length cut, without a
    word, where score, evaluate and calibrate warn. Now one warning line, naming no --max-length (combine has
    none: it reads the model's own)."""
    cfg = config(bert, tmp_path, "cut", max_steps=1, max_length=12)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    pairs = attribute_pairs(4, seed=6)[["prompt", "chosen", "rejected"]].assign(p_chosen=0.8)
    pairs.loc[0, "chosen"] = " ".join(["helpful correct short answer"] * 4)
    pairs.to_json(tmp_path / "pairs.jsonl", orient="records", lines=True)
    assert accord_main(["combine", cfg.output_dir, str(tmp_path / "pairs.jsonl"), "--quiet"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "did not fit" in line]
    assert len(lines) == 1 and "combine: " in lines[0] and "of the 8 responses of the pairs" in lines[0]
    assert "max_length 12" in lines[0] and "--max-length" not in lines[0]


def test_combine_takes_progress_and_no_progress_as_train_does(bert, tmp_path, capfd):
    """Was: `accord combine --no-progress` (train's flag) was 'unrecognized arguments'. Now it takes
    --progress/--no-progress as every long-running command does (--no-progress: no bars, as --quiet), and --quiet with
    --progress is one line before any work, the model's combination left unwritten."""
    cfg = config(bert, tmp_path, "progress", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    attribute_pairs(4, seed=6)[["prompt", "chosen", "rejected"]].assign(p_chosen=0.8).to_json(
        tmp_path / "pairs.jsonl", orient="records", lines=True)
    base = ["combine", cfg.output_dir, str(tmp_path / "pairs.jsonl")]
    capfd.readouterr()
    for extra in ([str(tmp_path / "pairs.jsonl")], ["--method", "fixed", "--weights", "helpful=1"]):
        argv = [*base[:2], *extra, "--quiet", "--progress"]
        assert accord_main(argv) == 2
        err = capfd.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--quiet and --progress" in err[0], err
        assert not list(Path(cfg.output_dir).glob("*combination*"))
    assert accord_main([*base, "--no-progress"]) == 0
    assert "%|" not in capfd.readouterr().err
    assert accord_main([*base, "--progress"]) == 0
    assert "%|" in capfd.readouterr().err


def test_score_keeps_the_rows_of_a_frame_with_any_index(bert, tmp_path):
    # was: the index was reset to 0..n-1, so df["reward"] = score(rm, df)["reward"] put each reward on another row
    cfg = config(bert, tmp_path, "indexed", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    for frame in (pd.DataFrame({"prompt": ["q", "q"], "response": ["helpful correct short", "useless wrong"]}),
                  attribute_pairs(3, seed=6)[["prompt", "chosen", "rejected"]]):
        index = pd.Index([7, 3, 7][:len(frame)], name="row_id")
        scored = score(cfg.output_dir, frame.set_axis(index))
        assert scored.index.equals(index)
        pd.testing.assert_frame_equal(scored.reset_index(drop=True), score(cfg.output_dir, frame))


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """A tiny decoder whose tokenizer has a chat template (as most decoders' have)."""
    words = " ".join(GOOD + BAD + tuple(FILLER) + ("q",))
    return str(build_tiny_backbone(tmp_path_factory.mktemp("attributes") / "llama", "llama", texts=[words], seed=1))


def _as_chat(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with chat messages: pairs as whole conversations (no prompt column), responses with the prompt as a
    user turn."""
    frame = frame.copy()
    user = [[{"role": "user", "content": p}] for p in frame["prompt"]]
    if "response" in frame.columns:
        frame["prompt"] = user
        return frame
    for side in ("chosen", "rejected"):
        frame[side] = [u + [{"role": "assistant", "content": text}] for u, text in zip(user, frame[side])]
    return frame.drop(columns="prompt")


@pytest.mark.parametrize("layout", ["pairs", "responses"])
def test_score_reads_chat_messages_as_training_does(llama, tmp_path, layout):
    # was: score_attributes encoded str() of each message list (its Python repr) as a text, where training renders
    # the messages with the chat template (and takes the conversations' shared turns for the prompt): a decoder's
    # scores of its own training data were another model's
    table = _as_chat(attribute_pairs(6, seed=4) if layout == "pairs" else graded_responses(6, seed=4))
    columns = ["chosen", "rejected"] if layout == "pairs" else ["prompt", "response"]
    cfg = config(llama, tmp_path, "chat", max_steps=1, batch_size=6, stats_max_pairs=6)
    trainer = RewardTrainer(cfg, train_data=table)
    trainer.train()
    assert trainer.unwrapped().meta["use_chat_template"]
    rewards = predict_attributes(trainer.unwrapped(), trainer.train_data, pad_token_id=trainer.tokenizer.pad_token_id)
    scored = score(cfg.output_dir, table[columns])
    for j, name in enumerate(trainer.task.spec.names):
        if layout == "pairs":
            assert np.allclose(scored[f"reward_{name}_chosen"], rewards["chosen"][:, j], atol=1e-5), name
            assert np.allclose(scored[f"reward_{name}_rejected"], rewards["rejected"][:, j], atol=1e-5), name
        else:
            assert np.allclose(scored[f"reward_{name}"], rewards["reward"][:, j], atol=1e-5), name


def test_evaluate_says_once_when_max_length_cuts_the_responses_as_score_and_training_do(bert, tmp_path):
    """Was: `accord evaluate` of a multi-attribute model counted the responses --max-length cut in its metrics
    alone, where training and score warn of them. Now it warns once (the combined reward's scoring says nothing)."""
    import warnings

    cfg = config(bert, tmp_path, "cut-evaluate", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    pairs = attribute_pairs(3, seed=6)
    pairs.loc[0, "chosen"] = " ".join(["helpful correct short answer"] * 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = evaluate(cfg.output_dir, pairs.assign(p_chosen=0.8), max_length=12)
    cut = [str(w.message) for w in caught if "did not fit" in str(w.message)]
    assert len(cut) == 1, cut
    assert cut[0].startswith(f"evaluate: {metrics['truncated_responses']} of the 6 responses of the pairs did not "
                             "fit max_length 12"), cut


def test_evaluate_scores_the_combined_reward_on_the_pairs_with_an_overall_label_only(bert, tmp_path):
    # was: a pair without an overall label (NaN p_chosen) was compared as if its rejected side were better
    cfg = config(bert, tmp_path, "overall", max_steps=2)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    pairs = attribute_pairs(12, seed=8)
    pairs["p_chosen"] = np.where(np.arange(12) % 3 == 0, np.nan, np.where(np.arange(12) % 2 == 0, 0.9, 0.2))
    labelled = pairs["p_chosen"].notna().to_numpy()
    both = evaluate(cfg.output_dir, pairs)
    only = evaluate(cfg.output_dir, pairs[labelled].reset_index(drop=True))
    assert both["combined_n_pairs"] == labelled.sum()
    for name, value in only.items():
        if name.startswith("combined_"):
            assert both[name] == pytest.approx(value), name


def test_evaluate_refuses_a_nan_attribute_reward_naming_the_model_attribute_and_first_pair(bert, tmp_path,
                                                                                         monkeypatch):
    """evaluate passed a NaN attribute reward (a diverged model) on as metrics without a word, where score refused
    it; it is now the same error, naming the model, the attribute and the first pair."""
    import accord.reward.attributes as attributes_module

    cfg = config(bert, tmp_path, "nan-evaluate", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    pairs = attribute_pairs(3, seed=6)
    assert "accuracy_correct" in evaluate(cfg.output_dir, pairs)
    real = attributes_module.predict_sequences
    nan_at, column = 1, ATTRIBUTES.index("correct")

    def nan_reward(*args, **kwargs):
        predicted = real(*args, **kwargs)
        predicted["reward"][nan_at, column] = np.nan
        return predicted

    monkeypatch.setattr(attributes_module, "predict_sequences", nan_reward)
    with pytest.raises(AccordError, match=f"^{cfg.output_dir}: reward_correct_chosen: 1 of 3 pairs are NaN "
                                          f"\\(the first at position {nan_at}\\)"):
        evaluate(cfg.output_dir, pairs)


def ratings_file(tmp_path, change: str | None = None):
    """Per-attribute 0..4 ratings of responses to two prompts (CSV), optionally with one bad row."""
    rng = np.random.default_rng(7)
    rows = []
    for r in range(12):
        good = rng.random(len(ATTRIBUTES)) < 0.5
        text = response_text(rng, good)
        for rater in ("ann", "bob", "cy"):
            for k, name in enumerate(ATTRIBUTES):
                rows.append({"response_id": f"r{r}", "annotator": rater, "attribute": name,
                             "label": int(np.clip(round(3.0 * good[k] + 0.5 + rng.normal(0, 0.5)), 0, 4)),
                             "scale_min": 0, "scale_max": 4, "prompt": f"prompt {r % 2}", "response": text})
    frame = pd.DataFrame(rows)
    if change == "missing attribute":
        frame.loc[5, "attribute"] = None
    elif change == "off the scale":
        frame.loc[5, "label"] = 7
    elif change == "two scales":
        frame.loc[5, ["scale_min", "scale_max"]] = [1, 5]
    path = tmp_path / "ratings.csv"
    frame.to_csv(path, index=False)
    return path


BAD_INPUT = {"missing attribute": "column 'attribute', row 5", "off the scale": "column 'label', row 5",
             "two scales": "row 5: two scales in one attribute"}


@pytest.mark.parametrize("change", sorted(BAD_INPUT))
def test_bad_ratings_are_one_clear_error_and_nothing_is_written(bert, tmp_path, change, capsys):
    source = ratings_file(tmp_path, change)
    output, pairs, model_dir = tmp_path / "scores.parquet", tmp_path / "pairs.parquet", tmp_path / "rm"
    assert accord_main(["aggregate", "--input", str(source), "--output", str(output), "--pairs-output",
                        str(pairs)]) == 2
    assert accord_main(["train", "--task", "attributes", "--model", bert, "--train-path", str(source),
                        "--output-dir", str(model_dir), "--no-progress"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(BAD_INPUT[change] in line and "ratings.csv" in line for line in errors), errors
    assert not output.exists() and not pairs.exists() and not model_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ratings.csv"]


def test_from_ratings_to_per_attribute_scores_in_three_commands(bert, tmp_path, capsys):
    source = ratings_file(tmp_path)
    scores, pairs, model_dir = tmp_path / "scores.parquet", tmp_path / "pairs.parquet", tmp_path / "rm"
    assert accord_main(["aggregate", "--input", str(source), "--method", "attribute-mean", "--output", str(scores),
                        "--pairs-output", str(pairs)]) == 0
    cleaned = read_attribute_cleaned(scores)
    assert len(cleaned) == 12 and {f"{a}_{s}" for a in ATTRIBUTES for s in ("mean", "sd")} <= set(cleaned.columns)
    assert len(read_attribute_cleaned(pairs)) == 2 * 15  # every pair of the 6 responses of each prompt
    # a judgments table is no training data: one clear error
    assert accord_main(["train", "--task", "attributes", "--model", bert, "--train-path", str(source),
                        "--output-dir", str(model_dir), "--no-progress"]) == 2
    assert "accord aggregate" in capsys.readouterr().err
    assert accord_main(["train", "--task", "attributes", "--model", bert, "--train-path", str(scores),
                        "--output-dir", str(model_dir), "--max-steps", "2", "--batch-size", "4",
                        "--no-progress"]) == 0
    out = tmp_path / "scored.csv"
    assert accord_main(["score", str(model_dir), str(scores), "--out", str(out)]) == 0
    scored = pd.read_csv(out)
    assert {f"{a}_predicted" for a in ATTRIBUTES} | {f"reward_{a}" for a in ATTRIBUTES} | {"reward"} <= set(
        scored.columns)
    assert scored[[f"{a}_predicted" for a in ATTRIBUTES]].stack().between(0, 4).all()


def test_score_of_a_gating_model_on_the_aggregate_s_own_pairs_writes_each_attribute_s_gate(bert, tmp_path, capsys):
    """`accord score` of a model combined with a gating network wrote each attribute's gate as weight_<a>, the name
    of accord aggregate's per-attribute pair weights, so scoring the aggregate's own pairs file was refused (the
    columns clashed). The gates are now gate_<a>, written beside the data's weight_<a>, which are kept as they were;
    the combined reward is the gates times the attributes' rewards."""
    source = ratings_file(tmp_path)
    scores, pairs, model_dir = tmp_path / "scores.parquet", tmp_path / "pairs.parquet", tmp_path / "rm"
    assert accord_main(["aggregate", "--input", str(source), "--method", "attribute-mean", "--output", str(scores),
                        "--pairs-output", str(pairs)]) == 0
    assert accord_main(["train", "--task", "attributes", "--model", bert, "--train-path", str(pairs),
                        "--output-dir", str(model_dir), "--max-steps", "1", "--batch-size", "8",
                        "--no-progress"]) == 0
    assert accord_main(["combine", str(model_dir), str(pairs), "--method", "gating", "--quiet"]) == 0
    out = tmp_path / "scored.csv"
    capsys.readouterr()
    assert accord_main(["score", str(model_dir), str(pairs), "--out", str(out), "--quiet"]) == 0, \
        capsys.readouterr().err
    scored, data = pd.read_csv(out), read_attribute_cleaned(pairs)
    weights = [f"weight_{a}" for a in ATTRIBUTES]
    assert np.allclose(scored[weights].to_numpy(), data[weights].to_numpy())  # the data's, as they were
    gates = scored[[f"gate_{a}" for a in ATTRIBUTES]].to_numpy()
    rewards = scored[[f"reward_{a}_chosen" for a in ATTRIBUTES]].to_numpy()
    assert (gates >= 0).all() and np.allclose((gates * rewards).sum(axis=1), scored["reward_chosen"], atol=1e-5)


@pytest.mark.parametrize("shape", ["responses", "pairs"])
def test_score_refuses_a_nan_attribute_reward_naming_the_model_attribute_and_first_row(bert, tmp_path, monkeypatch,
                                                                                         shape):
    """A NaN attribute reward (a diverged model) was written as the attribute's reward, and NaN the combined
    reward with it, without a word; it is now one error naming the model, the attribute and the first row."""
    import accord.reward.attributes as attributes_module

    cfg = config(bert, tmp_path, "nan", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    real = attributes_module.predict_sequences
    nan_at, column = 1, ATTRIBUTES.index("correct")

    def nan_reward(*args, **kwargs):
        predicted = real(*args, **kwargs)
        if not kwargs.get("capture_pooled"):
            predicted["reward"][nan_at, column] = np.nan
        return predicted

    monkeypatch.setattr(attributes_module, "predict_sequences", nan_reward)
    if shape == "responses":
        data, suffix = pd.DataFrame({"prompt": ["q"] * 3, "response": ["helpful", "wrong rambling", "the cat"]}), ""
    else:
        data, suffix = attribute_pairs(3, seed=6)[["prompt", "chosen", "rejected"]], "_chosen"
    with pytest.raises(AccordError, match=f"^{cfg.output_dir}: reward_correct{suffix}: 1 of 3 {shape} are NaN "
                                          f"\\(the first at position {nan_at}\\)"):
        score(cfg.output_dir, data)


def test_the_trainer_refuses_a_nan_attribute_reward_in_evaluation_and_statistics(bert, tmp_path, monkeypatch):
    """Was: the in-trainer evaluation passed a NaN attribute reward (a diverged model) on as wrong metrics (NaN > 0
    read as "rejected is better") and reward_stats.json got a NaN mean, while accord evaluate refused it. Now both
    are one error naming the attribute and the first pair."""
    import accord.reward.attributes as attributes_module

    frame = attribute_pairs(12, seed=9)
    cfg = config(bert, tmp_path, "nan-attributes", max_steps=1)
    trainer = RewardTrainer(cfg, train_data=frame, eval_data=frame)
    real = attributes_module.predict_sequences
    at = 3

    def nan_reward(*args, **kwargs):
        pred = real(*args, **kwargs)
        pred["reward"][at, 1] = np.nan
        return pred

    monkeypatch.setattr(attributes_module, "predict_sequences", nan_reward)
    with pytest.raises(AccordError, match=f"^evaluation data: reward_correct_chosen: 1 of 12 pairs are NaN \\(the "
                                          f"first at position {at}\\)"):
        trainer.evaluate()
    with pytest.raises(AccordError, match="reward_stats.json.*NaN"):
        trainer.save_model(tmp_path / "saved")
    assert not (tmp_path / "saved" / "reward_stats.json").exists()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-2, 2), st.integers(-2, 2), st.sampled_from([0.1, 0.9, np.nan])),
                min_size=1, max_size=12))
def test_a_preference_attribute_s_accuracy_does_not_depend_on_which_side_is_shown_as_chosen(rows):
    """Was: a pair scored exactly even (two identical responses, d = 0) counted as 'rejected is better', right for a
    label below 1/2 and wrong above it, so swapping the sides (and the label to 1 - p) changed the accuracy, and an
    untrained constant model scored the share of labels below 1/2. Now it counts half, as pairwise_metrics does."""
    from accord.reward.attributes import AttributeSpec, attribute_metrics

    spec = AttributeSpec("pairs", ["helpful"], ["preference"], [(0.0, 1.0)], [0.0])
    chosen, rejected, label = (np.array(column, dtype=float)[:, None] for column in zip(*rows))
    none = np.full_like(chosen, np.nan)

    def accuracy(c, r, y):
        return attribute_metrics(spec, {"chosen": c, "rejected": r, "var_chosen": none, "var_rejected": none},
                                 y).get("accuracy_helpful")

    assert accuracy(chosen, rejected, label) == accuracy(rejected, chosen, 1.0 - label)
    if np.isfinite(label).any():
        assert accuracy(chosen, chosen, label) == 0.5


@pytest.mark.parametrize("attribute", ["correct", "slack"])
def test_an_attribute_whose_training_weights_are_all_zero_is_refused_naming_its_column(bert, tmp_path, attribute):
    """Was: an attribute rated only with weight 0 got weights normalised by a mean of 0, so its head never moved,
    trained without a word (the pairwise task refuses such data). Now it is one error naming the weight column; a
    loss that ignores weights still trains a preference attribute."""
    frame = attribute_pairs(16, seed=6).assign(**{f"weight_{attribute}": 0.0})
    with pytest.raises(AccordError, match=f"column 'weight_{attribute}': every training pair rated on '{attribute}' "
                                          "has weight 0"):
        RewardTrainer(config(bert, tmp_path, f"zero-{attribute}", model=str(tmp_path / "absent")), train_data=frame)
    if attribute == "correct":
        RewardTrainer(config(bert, tmp_path, "zero-unweighted", loss="soft_bce"), train_data=frame)
    partly = attribute_pairs(16, seed=6).assign(**{f"weight_{attribute}": [0.5] + [0.0] * 15})
    RewardTrainer(config(bert, tmp_path, f"one-weighted-{attribute}"), train_data=partly)


def test_the_logged_training_loss_is_the_loss_optimised_with_missing_labels(bert, tmp_path):
    """Was: the attributes task logged the sum of its per-(pair, attribute) losses over all the step's pairs, an
    unrated attribute counting as a loss of 0, so with missing labels metrics.jsonl read lower than the loss being
    optimised (per attribute the mean over its rated pairs). Now the logged loss is the loss optimised, however the
    step is split into micro-batches."""
    frame = attribute_pairs(16, seed=9, observed=0.4)
    assert frame["p_chosen_concise"].isna().sum() >= 4
    # one step of all 16 pairs, in two micro-batches: the step's loss does not depend on their order
    cfg = config(bert, tmp_path, "logged-loss", max_steps=1, logging_steps=1, gradient_accumulation_steps=2)
    trainer = RewardTrainer(cfg, train_data=frame)
    task, data = trainer.task, trainer.train_data
    indices = np.arange(len(data))
    with torch.no_grad():
        optimised, _ = task.compute_loss(trainer.unwrapped(), task.collate(data, indices),
                                         task.step_context(data, indices))
    trainer.train()
    assert logged_losses(tmp_path / "logged-loss") == [pytest.approx(float(optimised), rel=1e-5)]


@pytest.mark.parametrize("head", ["random", "even"])
def test_the_logged_training_accuracy_counts_pairs_as_the_evaluation_does(bert, tmp_path, head):
    """Was: the attributes task logged per pair the share of its rated attributes with (d > 0) == (label > 1/2):
    the property counted, a label of exactly 1/2 counted, a pair scored exactly even counted wrong on a label
    favouring chosen, and a pair with no rated attribute counted 0, where the evaluation's accuracy is the mean over
    preference attributes of each one's accuracy on its pairs with a side (an even pair half right). Now the logged
    accuracy is the evaluation's (one rule: pair_hits)."""
    frame = attribute_pairs(16, seed=10, observed=0.5)
    frame.loc[:3, "p_chosen_correct"] = 0.5  # labels without a side
    frame.loc[4:5, [f"p_chosen_{name}" for name in ATTRIBUTES]] = np.nan  # pairs with no rated preference
    trainer = RewardTrainer(config(bert, tmp_path, f"accuracy-{head}", batch_size=16, max_steps=1), train_data=frame)
    data = trainer.train_data
    logged = logged_sums(trainer, even=head == "even")["accuracy"]  # every pair scored exactly even, or not
    evaluated = trainer.evaluate(data, trainer.train_table)["accuracy"]
    if head == "even":
        assert evaluated == 0.5
    assert logged == pytest.approx(evaluated, abs=1e-6)


def test_a_property_no_training_pair_is_rated_on_is_masked_not_nan(bert, tmp_path):
    """Was: a pair property whose column holds no rating got the offset logit(nanmean([])) = NaN, and its masked
    losses' NaN gradients turned every weight of the model NaN (the run ended in 'training rewards ... are NaN').
    Now its offset is 0 and it is masked out as an unrated preference is: the other attributes train."""
    frame = attribute_pairs(16, seed=11)
    frame["slack_mean"] = np.nan
    trainer = RewardTrainer(config(bert, tmp_path, "unrated-property", max_steps=2), train_data=frame)
    assert trainer.task.spec.offsets == [0.0] * 4
    result = trainer.train()
    assert np.isfinite(result.train_loss)
    assert all(torch.isfinite(p).all() for p in trainer.unwrapped().parameters())


def test_a_model_trained_on_graded_responses_is_evaluated_on_the_pairs_aggregate_writes(bert, tmp_path, capsys):
    """Was: `accord evaluate` of a model trained on the responses layout (`--train-path scores.parquet`) on the pairs
    `accord aggregate --pairs-output` writes ended in a traceback (KeyError: 'response'), though `accord combine` and
    `accord score` read those pairs. Now each graded attribute's reward difference orders the pair against its
    `p_chosen_<a>`, the accuracy `accord score`'s rewards give, and the combined reward is scored against `p_chosen`.
    A model trained on pairs has rewards on no scale, so a table of graded responses is one error naming the file."""
    from accord.reward.evaluate import pair_hits

    source = ratings_file(tmp_path)
    scores, pairs, model_dir = tmp_path / "scores.parquet", tmp_path / "pairs.parquet", tmp_path / "rm"
    assert accord_main(["aggregate", "--input", str(source), "--method", "attribute-mean", "--output", str(scores),
                        "--pairs-output", str(pairs), "--quiet"]) == 0
    assert accord_main(["train", "--task", "attributes", "--model", bert, "--train-path", str(scores),
                        "--output-dir", str(model_dir), "--max-steps", "2", "--batch-size", "4",
                        "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "metrics.json"
    assert accord_main(["evaluate", str(model_dir), str(pairs), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads(out.read_text())
    table = read_attribute_cleaned(pairs)
    scored = score(str(model_dir), table)
    for name in ATTRIBUTES:
        label = table[f"p_chosen_{name}"].to_numpy(dtype=float)
        side = np.where(label > 0.5, 1, np.where(label < 0.5, -1, 0))
        d = (scored[f"reward_{name}_chosen"] - scored[f"reward_{name}_rejected"]).to_numpy()
        assert metrics[f"n_{name}"] == (side != 0).sum()
        assert metrics[f"accuracy_{name}"] == pytest.approx(pair_hits(d[side != 0], side[side != 0]).mean(), abs=1e-6)
    assert metrics["combined_n_pairs"] == table["p_chosen"].notna().sum()
    # the other way round: no scale to read a pairs model's rewards on
    pairs_model = tmp_path / "rm-pairs"
    assert accord_main(["train", "--task", "attributes", "--model", bert, "--train-path", str(pairs),
                        "--output-dir", str(pairs_model), "--max-steps", "1", "--batch-size", "4",
                        "--no-progress"]) == 0
    capsys.readouterr()
    assert accord_main(["evaluate", str(pairs_model), str(scores), "--quiet"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "scores.parquet" in error[0] and "pairs" in error[0], error


@pytest.mark.parametrize("layout", ["pairs", "responses"])
def test_evaluate_on_a_table_without_any_of_the_model_s_labels_is_one_error_naming_the_file(bert, tmp_path, capsys,
                                                                                          layout):
    """Was: `accord evaluate` of a multi-attribute model on texts without any label it reads (no `p_chosen_<a>`,
    `<a>_mean` or overall `p_chosen`) printed `{}` and exited 0, as if the model had been evaluated. Now it is one
    error naming the file and the columns it looks for, before the model loads."""
    train_data = attribute_pairs(16, seed=5) if layout == "pairs" else graded_responses(16, seed=5)
    cfg = config(bert, tmp_path, f"unlabelled-{layout}", max_steps=1)
    RewardTrainer(cfg, train_data=train_data).train()
    texts = tmp_path / "texts.jsonl"
    table = attribute_pairs(4, seed=6)[["prompt", "chosen", "rejected"]]
    if layout == "responses":
        table = table.rename(columns={"chosen": "response"}).drop(columns="rejected")
    table.to_json(texts, orient="records", lines=True)
    capsys.readouterr()
    assert accord_main(["evaluate", cfg.output_dir, str(texts), "--quiet"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "texts.jsonl" in error[0] and f"{ATTRIBUTES[0]}" in error[0], error


@pytest.mark.parametrize("column, value", [("p_chosen", 1.5), ("p_chosen", "high"), ("p_tie", -0.2),
                                           ("p_tie", 0.9)])
def test_evaluate_refuses_an_overall_label_that_is_no_probability_naming_file_column_and_row(bert, tmp_path, capsys,
                                                                                           column, value):
    """Was: an overall p_chosen (or p_tie) of a plain table off [0, 1], or a text, was a bare ValueError of numpy or of
    the ECE ('could not convert string to float', 'outcome: ... not probabilities'): a traceback naming no file,
    column or row, after the model had scored every pair. Now it is one line naming all three, before the model
    loads."""
    cfg = config(bert, tmp_path, "overall-labels", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    pairs = attribute_pairs(4, seed=6)
    pairs["p_chosen"], pairs["p_tie"] = [0.9, np.nan, 0.4, 0.2], 0.0
    pairs[column] = pairs[column].astype(object)
    pairs.loc[2, column] = value
    path = tmp_path / "overall.jsonl"
    pairs.to_json(path, orient="records", lines=True)
    capsys.readouterr()
    assert accord_main(["evaluate", cfg.output_dir, str(path), "--quiet"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "overall.jsonl" in error[0] and column in error[0] and "row 2" in error[0], error


def test_the_trainer_evaluates_a_model_trained_on_graded_responses_on_pairs_as_accord_evaluate_does(bert, tmp_path):
    """Was: evaluation pairs (eval_path) for a model trained on graded responses were refused ('pairs, but the model
    trains on responses'), though `accord evaluate` of the saved model reads them. Now the trainer's evaluation
    orders the pairs by each attribute's reward difference and gives `accord evaluate`'s accuracies."""
    cfg = config(bert, tmp_path, "responses-eval-pairs", num_epochs=2)
    pairs = attribute_pairs(24, seed=12)
    result = RewardTrainer(cfg, train_data=graded_responses(32, seed=2), eval_data=pairs).train()
    evaluated = evaluate(cfg.output_dir, pairs)
    for name in ATTRIBUTES:
        assert result.eval_metrics[f"n_{name}"] == evaluated[f"n_{name}"] == len(pairs)
        assert result.eval_metrics[f"accuracy_{name}"] == pytest.approx(evaluated[f"accuracy_{name}"], abs=1e-6)


@pytest.mark.parametrize("text", ['{"method": "fix', "[]"])
def test_a_damaged_combination_file_is_one_line_naming_the_folder_and_file(bert, tmp_path, capsys, text):
    """A reward_combination.json cut short (a copy, a download) or holding no object ended `accord score` in a
    JSONDecodeError or AttributeError traceback; it is now one line naming the folder and the file."""
    from accord.reward.attribute_combination import COMBINATION_FILE

    cfg = config(bert, tmp_path, "damaged", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    (Path(cfg.output_dir) / COMBINATION_FILE).write_text(text)
    data = tmp_path / "responses.jsonl"
    pd.DataFrame({"prompt": ["q"], "response": ["helpful correct short"]}).to_json(data, orient="records", lines=True)
    capsys.readouterr()
    assert accord_main(["score", cfg.output_dir, str(data), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"folder {cfg.output_dir}" in err and COMBINATION_FILE in err, err


@pytest.mark.parametrize(("attribute", "column", "settings"), [("normalised", "reward_normalised", {}),
                                                                ("sd", "reward_sd", {"uncertainty_head": True})])
def test_an_attribute_named_like_a_score_column_is_refused_before_training_naming_both(bert, tmp_path, capsys,
                                                                                         monkeypatch, attribute,
                                                                                         column, settings):
    """An attribute 'normalised' trained, and then every `accord score` of the model failed: its reward_normalised
    is the column of the combined reward normalised (and an attribute 'sd' with an uncertainty head: reward_sd, the
    combined reward's spread). It is now refused before the model loads, in one line naming the attribute and the
    column; without an uncertainty head no reward_sd is written, and an attribute 'sd' trains."""
    data = attribute_pairs(16, seed=5).rename(columns={"p_chosen_concise": f"p_chosen_{attribute}",
                                                       "weight_concise": f"weight_{attribute}"})
    path = tmp_path / "pairs.jsonl"
    data.to_json(path, orient="records", lines=True)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(RewardTrainer, "_set_up_model", no_model)
    cfg = config(bert, tmp_path, "named", max_steps=1, **settings)
    with pytest.raises(AccordError, match=rf"attribute '{attribute}''s reward and the combined .* '{column}'"):
        RewardTrainer(cfg, train_data=data)
    capsys.readouterr()
    assert accord_main(["train", "--task", "attributes", "--model", bert, "--train-path", str(path), "--output-dir",
                        cfg.output_dir, "--max-steps", "1", "--no-progress",
                        *(["--uncertainty-head"] if settings else [])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"'{attribute}'" in err and f"'{column}'" in err, err
    assert not Path(cfg.output_dir).exists()
    monkeypatch.undo()
    if attribute == "sd":
        plain = config(bert, tmp_path, "plain", max_steps=1)
        RewardTrainer(plain, train_data=data).train()
        assert "reward_sd" in score(plain.output_dir, data[["prompt", "chosen"]].rename(columns={"chosen": "response"}))


def test_a_model_saved_with_an_attribute_named_like_a_score_column_is_one_error_naming_both(bert, tmp_path, capsys,
                                                                                             monkeypatch):
    # an attribute 'normalised' gave reward_normalised, which the combined reward's normalised value then replaced,
    # silently (and 'sd' gave reward_sd, the combined spread's name); training now refuses such a name, and a model
    # saved before (its metadata written here) gets one error naming both, before it loads
    import sys

    cfg = config(bert, tmp_path, "named", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    meta_path = Path(cfg.output_dir) / "reward_model.json"
    meta = json.loads(meta_path.read_text())
    rename = {"concise": "normalised"}
    meta["attributes"]["names"] = [rename.get(name, name) for name in meta["attributes"]["names"]]
    meta["combination"]["weights"] = {rename.get(k, k): v for k, v in meta["combination"]["weights"].items()}
    meta_path.write_text(json.dumps(meta))
    responses = pd.DataFrame({"prompt": ["q", "q"], "response": ["helpful correct short", "useless wrong"]})

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(sys.modules["accord.reward.evaluate"], "load_model", no_model)
    with pytest.raises(AccordError, match=r"attribute 'normalised''s reward and the combined reward normalised both "
                                          r"give the column 'reward_normalised'"):
        score(cfg.output_dir, responses)
    path = tmp_path / "responses.jsonl"
    responses.to_json(path, orient="records", lines=True)
    out = tmp_path / "scored.csv"
    capsys.readouterr()
    assert accord_main(["score", cfg.output_dir, str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'reward_normalised'" in err and not out.exists(), err


def test_a_data_column_named_like_an_attribute_score_column_is_refused(bert, tmp_path):
    # was: the attribute's score replaced the data's own column of its name without a word
    cfg = config(bert, tmp_path, "taken", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    responses = pd.DataFrame({"prompt": ["q", "q"], "response": ["helpful correct short", "useless wrong"],
                              "reward_concise": [1.0, 2.0]})
    with pytest.raises(AccordError, match=r"column 'reward_concise'.*rename or drop it in the data"):
        score(cfg.output_dir, responses)
    pairs = pd.DataFrame({"prompt": ["q"], "chosen": ["helpful"], "rejected": ["wrong"], "p_chosen_model": [0.5]})
    with pytest.raises(AccordError, match=r"column 'p_chosen_model'"):
        score(cfg.output_dir, pairs)


def test_combine_fixed_without_pairs_says_there_is_no_normalised_reward(bert, tmp_path, capsys):
    """Fixed weights given without pairs have no mean and sd, so `accord score` left out reward_normalised, which
    the README lists, without a word: `accord combine` says so (not under --quiet), and with pairs it is there."""
    cfg = config(bert, tmp_path, "fixed", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    responses = pd.DataFrame({"prompt": ["q"], "response": ["helpful correct short"]})
    capsys.readouterr()
    assert accord_main(["combine", cfg.output_dir, "--method", "fixed", "--weights", "helpful=1"]) == 0
    err = capsys.readouterr().err
    assert "reward_normalised" not in score(cfg.output_dir, responses).columns
    assert err.startswith("note: no pairs given") and "no reward_normalised" in err, err
    assert accord_main(["combine", cfg.output_dir, "--method", "fixed", "--weights", "helpful=1", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    pairs = tmp_path / "pairs.jsonl"
    attribute_pairs(8, seed=6).to_json(pairs, orient="records", lines=True)
    assert accord_main(["combine", cfg.output_dir, str(pairs), "--method", "fixed", "--weights", "helpful=1"]) == 0
    assert "no pairs given" not in capsys.readouterr().err
    assert "reward_normalised" in score(cfg.output_dir, responses).columns


@pytest.fixture(scope="module")
def combinable(bert, tmp_path_factory):
    """A multi-attribute model trained a step, and pairs with an overall label."""
    folder = tmp_path_factory.mktemp("combinable")
    cfg = config(bert, folder, "rm", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=3)).train()
    pairs = folder / "pairs.jsonl"
    attribute_pairs(8, seed=4).assign(p_chosen=0.8).to_json(pairs, orient="records", lines=True)
    return cfg.output_dir, str(pairs)


@pytest.mark.parametrize("argv, flag", [(["--method", "fitted", "--alpha", "-1"], "--alpha"),
                                        (["--method", "gating", "--hidden", "0"], "--hidden"),
                                        (["--method", "fixed", "--weights", "helpful=nan"], "--weights"),
                                        (["--method", "fixed", "--weights", "helpfull=1"], "--weights")])
def test_a_combine_setting_that_cannot_work_names_its_flag_before_the_model_loads(combinable, argv, flag, capsys,
                                                                                   monkeypatch):
    """`accord combine rm pairs --alpha -1` loaded the model and scored every pair before it said "alpha: the L2
    penalty must be ..." (the keyword, where --alpha was typed); --hidden 0 and a --weights of NaN or of an attribute
    the model lacks the same. Each is now one line naming the flag, before the model loads."""
    import importlib

    evaluate = importlib.import_module("accord.reward.evaluate")  # the module: the package names a function so
    model_dir, pairs = combinable

    def load_model(*args, **kwargs):
        raise AssertionError("the model loaded")

    monkeypatch.setattr(evaluate, "load_model", load_model)
    capsys.readouterr()
    assert accord_main(["combine", model_dir, pairs, *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"accord: error: {flag}: ") and err.count("\n") == 1, err


@pytest.mark.parametrize("weights", ["helpful=1,helpful=2", "helpful=1, helpful =2", "helpful=1,concise=0,helpful=1"])
def test_combine_refuses_an_attribute_weighted_twice(weights, tmp_path, capsys, monkeypatch):
    """`accord combine rm --method fixed --weights helpful=1,helpful=2` saved helpful's weight as 2 without a word:
    the last of the two won. An attribute given twice is one line naming --weights and the attribute."""
    from accord.reward.model import RewardModel

    monkeypatch.setattr(RewardModel, "read_meta", staticmethod(lambda _: {
        "task": "attributes", "attributes": {"names": list(ATTRIBUTES)}}))
    capsys.readouterr()
    assert accord_main(["combine", str(tmp_path), "--method", "fixed", "--weights", weights, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accord: error: --weights: ") and "helpful" in err and err.count("\n") == 1, err
    assert not (tmp_path / "reward_combination.json").exists()


@pytest.mark.parametrize("layout", ["pairs", "responses"])
def test_evaluate_counts_what_max_length_cut_as_the_pairwise_and_step_models_do(bert, tmp_path, layout):
    """`accord evaluate` of a multi-attribute model gave no truncation counts, where the pairwise and the step models'
    report truncated_prompts, truncated_responses (or truncated_steps) and sequences. Now it reports them too, as
    whole numbers."""
    data = attribute_pairs(16, seed=5) if layout == "pairs" else graded_responses(16, seed=2)
    cfg = config(bert, tmp_path, layout, max_steps=1)
    RewardTrainer(cfg, train_data=data).train()
    whole = evaluate(cfg.output_dir, data)
    sequences = 2 * len(data) if layout == "pairs" else len(data)
    assert whole["truncated_responses"] == 0 and whole["sequences"] == sequences, whole
    cut = evaluate(cfg.output_dir, data, max_length=8)
    assert 0 < cut["truncated_responses"] <= cut["sequences"] == sequences, cut
    assert all(type(cut[k]) is int for k in ("truncated_prompts", "truncated_responses", "sequences")), cut


@pytest.mark.parametrize(("weights", "expected"), [
    ("help,ful=2,a=b=-1", {"help,ful": 2.0, "a=b": -1.0, "plain": 0.0}),
    ("plain=0.5, help,ful=1e-1", {"help,ful": 0.1, "a=b": 0.0, "plain": 0.5}),
    ("a=b=3", {"help,ful": 0.0, "a=b": 3.0, "plain": 0.0})])
def test_combine_weights_name_attributes_holding_commas_and_equals_signs(weights, expected, tmp_path, capsys,
                                                                         monkeypatch):
    """An attribute's name is any text (UKPConvArg2-style reasons, "help,ful", "a=b"), but `accord combine --weights`
    split at every ',' and at the first '=': such an attribute could not be weighted ("expected attribute=number,
    got 'help'", or 'a' with the weight 'b=-1'). A weight is the number after the last '=', and a piece without one
    belongs to the next name."""
    from accord.reward.model import RewardModel

    monkeypatch.setattr(RewardModel, "read_meta", staticmethod(lambda _: {
        "task": "attributes", "attributes": {"names": ["help,ful", "a=b", "plain"]}}))
    assert accord_main(["combine", str(tmp_path), "--method", "fixed", "--weights", weights, "--quiet"]) == 0, (
        capsys.readouterr().err)
    saved = json.loads((tmp_path / "reward_combination.json").read_text())
    assert saved["weights"] == expected


@pytest.mark.parametrize(("names", "weights", "expected"), [
    ([" x", "y"], " x=2,y=1", {" x": 2.0, "y": 1.0}),
    (["x", " x"], " x=1,x=2", {"x": 2.0, " x": 1.0}),
    (["x ", "y"], "y=1,x =-1", {"x ": -1.0, "y": 1.0}),
    (["x", " x"], "x=1, x=2", {"x": 1.0, " x": 2.0}),
    (["a", "b"], "a=1, b=2 ", {"a": 1.0, "b": 2.0})])  # spaces around a name the model lacks are still dropped
def test_combine_weights_name_attributes_with_spaces_around_them_as_written(names, weights, expected, tmp_path,
                                                                            capsys, monkeypatch):
    """The ratings keep an attribute's name as written (" x" is the attribute " x"), but `accord combine --weights`
    stripped every name: " x=2" was "unknown attribute(s) ['x']", so " x" could not be weighted. A name is now the
    model's attribute as written, else the one it names without the spaces around it."""
    from accord.reward.model import RewardModel

    monkeypatch.setattr(RewardModel, "read_meta", staticmethod(lambda _: {
        "task": "attributes", "attributes": {"names": names}}))
    assert accord_main(["combine", str(tmp_path), "--method", "fixed", "--weights", weights, "--quiet"]) == 0, (
        capsys.readouterr().err)
    saved = json.loads((tmp_path / "reward_combination.json").read_text())
    assert saved["weights"] == expected


@pytest.mark.parametrize("weights", ["help", "help,ful", "plain=1,", "plain=x", "=1"])
def test_combine_weights_that_do_not_parse_are_one_line_naming_the_flag(weights, tmp_path, capsys, monkeypatch):
    from accord.reward.model import RewardModel

    monkeypatch.setattr(RewardModel, "read_meta", staticmethod(lambda _: {
        "task": "attributes", "attributes": {"names": ["help,ful", "plain"]}}))
    assert accord_main(["combine", str(tmp_path), "--method", "fixed", "--weights", weights, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accord: error: --weights: ") and err.count("\n") == 1, err
    assert not (tmp_path / "reward_combination.json").exists()


def test_a_fitted_combination_records_its_max_length_and_scoring_at_another_warns(bert, tmp_path):
    """Was: the statistics of a combination fitted by `accord combine` (and the training rewards' of the default one)
    kept no length, and score at another max_length normalised the combined rewards by them without a word. Now each
    records the length its rewards were read at, and scoring at another warns, naming the file; a combination saved
    before the length was recorded is taken as it is, unsaid."""
    import warnings

    from accord.reward.attribute_combination import COMBINATION_FILE, fit_combination, save_combination

    cfg = config(bert, tmp_path, "rm", max_steps=1, max_length=24)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=3)).train()
    pairs = attribute_pairs(8, seed=4).assign(p_chosen=0.8)
    with pytest.warns(UserWarning, match="reward_stats.json.*max_length=24.*max_length=16"):
        score(cfg.output_dir, pairs, max_length=16)  # the default combination: the training rewards' statistics
    combination = fit_combination(cfg.output_dir, pairs, "fitted")
    assert combination.stats_["max_length"] == 24
    save_combination(cfg.output_dir, combination)
    with pytest.warns(UserWarning, match=f"{COMBINATION_FILE}.*max_length=24.*max_length=16"):
        score(cfg.output_dir, pairs, max_length=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score(cfg.output_dir, pairs)
        path = Path(cfg.output_dir) / COMBINATION_FILE
        saved = json.loads(path.read_text())
        del saved["stats"]["max_length"]
        path.write_text(json.dumps(saved))
        score(cfg.output_dir, pairs, max_length=16)


@pytest.mark.parametrize("method", ["fitted", "gating"])
def test_combine_on_pairs_whose_weights_are_all_zero_is_one_line_naming_the_column(combinable, method, tmp_path,
                                                                                   capsys, monkeypatch):
    """`accord combine rm pairs --method fitted` on pairs whose `weight` is 0 everywhere saved weights of 0 on every
    attribute (a combined reward of 0 for every response), and `--method gating` saved NaN parameters and statistics,
    both with exit status 0: the loss weighted by 0 learns nothing. Now it is one line naming the file and the column,
    before the model loads."""
    import importlib

    evaluate_module = importlib.import_module("accord.reward.evaluate")
    model_dir, _ = combinable
    pairs = tmp_path / "weightless.jsonl"
    attribute_pairs(8, seed=4).assign(p_chosen=1.0, weight=0.0).to_json(pairs, orient="records", lines=True)

    def load_model(*args, **kwargs):
        raise AssertionError("the model loaded")

    monkeypatch.setattr(evaluate_module, "load_model", load_model)
    saved = Path(model_dir) / "reward_combination.json"
    before = saved.read_text() if saved.exists() else None
    capsys.readouterr()
    assert accord_main(["combine", model_dir, str(pairs), "--method", method, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accord: error: ") and "'weight'" in err and str(pairs) in err and err.count("\n") == 1, err
    assert (saved.read_text() if saved.exists() else None) == before


@pytest.mark.parametrize("method", ["fitted", "gating"])
@pytest.mark.parametrize("tie", [{"p_chosen": 0.5, "p_tie": 0.0}, {"p_chosen": 0.0, "p_tie": 1.0}])
def test_combine_on_pairs_whose_overall_labels_are_all_ties_is_one_line_naming_the_column(combinable, method, tie,
                                                                                         tmp_path, capsys):
    """`accord combine rm pairs --method fitted` on pairs whose every overall label is a tie saved weights of exactly
    0 on every attribute (a combined reward constant for every response) with exit status 0 and no word: no pair
    says which side is better. Now it is one line naming the file and the column; one preferred pair is enough."""
    model_dir, _ = combinable
    pairs = tmp_path / "ties.jsonl"
    frame = attribute_pairs(8, seed=4).assign(**tie)
    frame.to_json(pairs, orient="records", lines=True)
    saved = Path(model_dir) / "reward_combination.json"
    before = saved.read_text() if saved.exists() else None
    capsys.readouterr()
    assert accord_main(["combine", model_dir, str(pairs), "--method", method, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accord: error: ") and "'p_chosen'" in err and "tie" in err and str(pairs) in err, err
    assert err.count("\n") == 1, err
    assert (saved.read_text() if saved.exists() else None) == before
    if method == "fitted":
        preferred = frame.assign(p_chosen=[0.8] + [tie["p_chosen"]] * 7, p_tie=[0.0] + [tie["p_tie"]] * 7)
        preferred.to_json(pairs, orient="records", lines=True)
        assert accord_main(["combine", model_dir, str(pairs), "--method", method, "--quiet"]) == 0
        assert any(w != 0 for w in json.loads(saved.read_text())["weights"].values())


@pytest.mark.parametrize("column", [None, 2])
def test_unpenalised_fitted_weights_that_do_not_exist_are_one_error_naming_alpha(column):
    """`accord combine --method fitted --alpha 0` (a penalty the help allows) on pairs whose overall labels the
    attribute rewards separate (every pair's chosen side ahead on one attribute: no finite maximum), or with an
    attribute whose differences are all 0, failed with numpy's "LinAlgError: Singular matrix" traceback. Now it is
    one error naming alpha, which the command line names as --alpha."""
    from accord.datasets.errors import SettingError

    rng = np.random.default_rng(0)
    differences = rng.normal(size=(50, 3))
    differences[:, 0] = np.abs(differences[:, 0])  # chosen is ahead on 'a' in every pair
    if column is not None:
        differences[:, column] = 0.0
    with pytest.raises(SettingError, match="alpha") as caught:
        FittedWeights(["a", "b", "c"], alpha=0.0).fit(differences, np.ones(50))
    assert caught.value.settings == ("alpha",) and "\n" not in str(caught.value)
    fitted = FittedWeights(["a", "b", "c"], alpha=1.0).fit(differences, np.ones(50))  # a penalty: finite weights
    assert np.isfinite(fitted.coef_).all()


@pytest.mark.parametrize("weights", ["helpful=0", "helpful=0,correct=-0.0,concise=0"])
@pytest.mark.parametrize("with_pairs", [False, True])
def test_fixed_weights_that_are_all_zero_are_one_line_naming_the_flag(combinable, weights, with_pairs, capsys):
    """`accord combine rm --method fixed --weights helpful=0` saved a combination whose reward is 0 for every
    response (`accord score` then ordered nothing: p_chosen_model 0.5 everywhere), with exit status 0. Weights of
    opposite signs (summing to 0) or left out are fine; all of them 0 is one line naming --weights."""
    model_dir, pairs = combinable
    saved = Path(model_dir) / "reward_combination.json"
    before = saved.read_text() if saved.exists() else None
    capsys.readouterr()
    argv = ["combine", model_dir, *([pairs] if with_pairs else []), "--method", "fixed", "--weights", weights]
    assert accord_main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accord: error: --weights: ") and err.count("\n") == 1, err
    assert (saved.read_text() if saved.exists() else None) == before
    assert accord_main(["combine", model_dir, "--method", "fixed", "--weights", "helpful=1,correct=-1", "--quiet"]) == 0
    assert json.loads(saved.read_text())["weights"] == {"helpful": 1.0, "correct": -1.0, "concise": 0.0, "slack": 0.0}
    if before is None:  # the module's model as it was for the tests after this one
        saved.unlink()
    else:
        saved.write_text(before)


@pytest.mark.parametrize("what", ["differences", "target", "weight"])
def test_fitted_weights_on_a_nan_input_say_so_not_that_a_penalty_is_missing(what):
    """A NaN attribute reward difference, label or weight with the default penalty (alpha 1) was refused as
    "without a penalty the weights are not determined ... give alpha > 0": a penalty that was there, and no word of
    the NaN. Now it is one error naming what is not finite."""
    from accord.datasets.errors import SettingError

    rng = np.random.default_rng(0)
    inputs = {"differences": rng.normal(size=(40, 2)), "target": rng.uniform(size=40), "weight": np.ones(40)}
    inputs[what][3] = np.nan
    with pytest.raises(AccordError, match="finite") as caught:
        FittedWeights(["a", "b"], alpha=1.0).fit(inputs["differences"], inputs["target"], inputs["weight"])
    assert not isinstance(caught.value, SettingError) and "\n" not in str(caught.value)


def test_a_full_disk_while_combine_writes_is_one_line_and_keeps_the_earlier_combination(bert, tmp_path, capsys,
                                                                                        monkeypatch):
    """Was: a full disk (ENOSPC) while `accord combine` wrote reward_combination.json was a pathlib traceback ending
    in "OSError: [Errno 28] No space left on device". Now it is one line naming the file, exit 2; the earlier
    combination stays as it was and no temporary file is left."""
    cfg = config(bert, tmp_path, "combined", max_steps=2)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=7)).train()
    model = Path(cfg.output_dir)
    assert accord_main(["combine", str(model), "--method", "fixed", "--weights", "helpful=1", "--quiet"]) == 0
    before = {path.name: path.read_bytes() for path in model.iterdir() if path.is_file()}
    disk_full_while_writing(monkeypatch, "reward_combination.json")
    capsys.readouterr()
    assert accord_main(["combine", str(model), "--method", "fixed", "--weights", "helpful=2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (f"accord: error: file {model / 'reward_combination.json'}: cannot write it: No space left on "
                   "device\n"), err
    assert {path.name: path.read_bytes() for path in model.iterdir() if path.is_file()} == before


def test_a_chat_prompt_the_chat_template_refuses_names_the_file_on_score_and_evaluate(llama, tmp_path):
    """A chat template's refusal of a prompt ("System role not supported") named its column and row but no file in
    score and evaluate of a multi-attribute model, as pairwise and step models' did before naming_file."""
    from transformers import AutoTokenizer

    from accord.reward.tiny import CHAT_TEMPLATE

    table = _as_chat(graded_responses(4, seed=4))
    cfg = config(llama, tmp_path, "chat", max_steps=1, batch_size=4, stats_max_pairs=4)
    RewardTrainer(cfg, train_data=table).train()
    tokenizer = AutoTokenizer.from_pretrained(cfg.output_dir)
    tokenizer.chat_template = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
                               "supported') }}{% endif %}" + CHAT_TEMPLATE)
    tokenizer.save_pretrained(cfg.output_dir)
    data = tmp_path / "graded.jsonl"
    system = [{"role": "system", "content": "be brief"}]
    table.assign(prompt=[*table["prompt"][:2], system, table["prompt"][3]]).to_json(data, orient="records", lines=True)
    for command in (score, evaluate):
        with pytest.raises(ValidationError, match=rf"file {data}, column 'prompt', row 2: the tokenizer's chat"):
            command(cfg.output_dir, str(data))


@pytest.mark.parametrize(("change", "named"), [
    ("renamed", "'correct'.*'honest'"),  # the head trained on 'correct' went on training towards 'honest', unsaid
    ("reordered", "another order"),  # head j went on training towards another attribute, unsaid
    ("dropped", "'correct'"),  # was torch's "Error(s) in loading state_dict", naming no attribute
])
def test_resuming_with_another_attribute_list_is_refused_naming_the_attribute(bert, tmp_path, change, named):
    """A checkpoint's head has one output per attribute of the data it was trained on: a resumed run whose training
    data rename, reorder or leave out an attribute trained each output towards another attribute than the one it had
    learned (renamed, reordered: silently, the same number of outputs) or failed in torch's state-dict loading
    (dropped). Now it is one error naming the attributes, before the checkpoint loads; the same data resume."""
    frame = attribute_pairs(32, seed=0)
    RewardTrainer(config(bert, tmp_path, "run", max_steps=4, save_steps=2), train_data=frame).train()
    checkpoint = tmp_path / "run" / "checkpoints" / "step-0000002"
    assert checkpoint.is_dir()
    pairs = [f"p_chosen_{name}" for name in ATTRIBUTES]
    other = {"renamed": frame.rename(columns={"p_chosen_correct": "p_chosen_honest",
                                              "weight_correct": "weight_honest"}),
             "reordered": frame[["prompt", "chosen", "rejected", *reversed(pairs), "slack_mean"]],
             "dropped": frame.drop(columns=["p_chosen_correct", "weight_correct"])}[change]
    resumed = config(bert, tmp_path, "run", max_steps=4, save_steps=2, resume_from=str(checkpoint))
    with pytest.raises(AccordError, match=f"step-0000002: saved training the attributes .*{named}"):
        RewardTrainer(resumed, train_data=other).train()
    RewardTrainer(resumed, train_data=frame).train()  # the same attributes resume


def test_evaluate_reports_each_attribute_s_calibration_beside_its_accuracy():
    """accord evaluate of a multi-attribute model gave each attribute's accuracy only (calibration for the combined
    reward alone), so whether P(chosen better on a) - accord score's p_chosen_<a>_model - or a property's P(a) can be
    read as a probability was not measured. Now every attribute on pairs has nll_<a>, ece_<a> (on the pairs whose
    label favours a side, as the accuracy) and soft_nll_<a>, soft_ece_<a> (against the soft labels), as the combined
    reward's: labels drawn from the model's own probabilities score a small ECE, an overconfident model a large
    one and a larger NLL."""
    from accord.reward.attributes import AttributeSpec, attribute_metrics
    from accord.reward.evaluate import pairwise_metrics

    rng = np.random.default_rng(0)
    spec = AttributeSpec("pairs", ["helpful", "slack"], ["preference", "property"], [(0.0, 1.0)] * 2, [0.0, 0.3])
    n = 4000
    chosen, rejected = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    logit = chosen - rejected + np.array([0.0, 0.3])
    labels = (rng.random((n, 2)) < 1 / (1 + np.exp(-logit))).astype(float)
    labels[:50, 0] = np.nan  # not rated: left out
    none = np.full_like(chosen, np.nan)

    def metrics(scale):
        # a model scale times as confident: its rewards scaled, the property's offset kept
        return attribute_metrics(spec, {"chosen": chosen * scale, "rejected": rejected * scale, "var_chosen": none,
                                        "var_rejected": none}, labels)

    calibrated, overconfident = metrics(1.0), metrics(4.0)
    for name, j in (("helpful", 0), ("slack", 1)):
        rated = ~np.isnan(labels[:, j])
        expected = pairwise_metrics(logit[rated, j], labels[rated, j])
        for metric in ("nll", "ece", "soft_nll", "soft_ece"):
            assert calibrated[f"{metric}_{name}"] == pytest.approx(expected[metric], rel=1e-6)
        assert calibrated[f"ece_{name}"] < 0.05 < overconfident[f"ece_{name}"]
        assert calibrated[f"nll_{name}"] < overconfident[f"nll_{name}"]


def test_evaluate_names_the_model_s_attributes_the_data_have_no_label_of(bert, tmp_path):
    """Data labelling some of the model's attributes only (a file of another aggregation, an attribute renamed) were
    evaluated on those, the others' metrics left out of the result - and of the mean 'accuracy' - without a word. Now
    a warning names the attributes without a label column; data with every label evaluate quietly."""
    cfg = config(bert, tmp_path, "partial", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    full = attribute_pairs(8, seed=6)
    partial = full.drop(columns=["p_chosen_correct", "weight_correct", "slack_mean"])
    with pytest.warns(UserWarning, match=r"no label of the model's attributes 'correct', 'slack' .*p_chosen_correct"):
        metrics = evaluate(cfg.output_dir, partial)
    assert "accuracy_helpful" in metrics and "accuracy_correct" not in metrics
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*no label of the model's attribute")
        assert "accuracy_correct" in evaluate(cfg.output_dir, full)
    # the trainer's evaluation data too
    with pytest.warns(UserWarning, match=r"no label of the model's attributes 'correct', 'slack'"):
        RewardTrainer(config(bert, tmp_path, "partial-eval", max_steps=1), train_data=full, eval_data=partial)


@pytest.mark.parametrize(("layout", "column"), [("responses", "reward_helpful"), ("responses", "reward_normalised"),
                                                ("pairs", "p_chosen_correct_model"), ("pairs", "reward_chosen")])
def test_score_refuses_a_column_it_would_replace_before_the_model_loads(bert, tmp_path, monkeypatch, layout, column):
    """accord score of a multi-attribute model found a data column named like one it writes (a table scored before)
    only after the model had loaded and scored every response: minutes of a large model's time, then the error. Now
    it is the same one error, naming the file and column, before the model loads, as the pairwise score does."""
    import sys

    evaluate_module = sys.modules["accord.reward.evaluate"]  # (accord.reward.evaluate is also the function)
    cfg = config(bert, tmp_path, "rm", max_steps=1)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=3)).train()
    table = attribute_pairs(4, seed=4)[["prompt", "chosen", "rejected"]]
    if layout == "responses":
        table = table.rename(columns={"chosen": "response"}).drop(columns="rejected")
    path = tmp_path / "scored.jsonl"
    table.assign(**{column: 1.0}).to_json(path, orient="records", lines=True)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(evaluate_module, "load_model", no_model)
    with pytest.raises(ValidationError, match=f"scored.jsonl, column '{column}': the scores are written to a column"):
        score(cfg.output_dir, str(path))
    # the columns checked are the columns written
    from accord.reward.attributes import AttributeSpec, score_columns

    monkeypatch.undo()
    written = list(score(cfg.output_dir, table).columns[table.shape[1]:])
    spec = AttributeSpec.from_dict(json.loads((Path(cfg.output_dir) / "reward_model.json").read_text())["attributes"])
    assert written == score_columns(spec, layout == "pairs", uncertainty=False, normalised=True, gating=False)


def test_evaluate_and_eval_path_read_the_held_out_split_of_a_saved_dataset_dict(bert, tmp_path):
    """A save_to_disk DatasetDict was read by its 'train' split by the attributes task whatever the command: accord
    evaluate and the trainer's eval_path scored the training pairs of a {'train', 'test'} folder and refused a
    {'test'} one, where the pairwise task reads the held-out split. Now they read it as the pairwise task does."""
    from conftest import saved_train_and_test

    train_pairs, test_pairs = attribute_pairs(16, seed=5), attribute_pairs(6, seed=8)
    both, test_only = saved_train_and_test(tmp_path, train_pairs, test_pairs)
    cfg = config(bert, tmp_path, "held-out-split", max_steps=1, train_path=str(both), eval_path=str(both))
    trainer = RewardTrainer(cfg)
    assert len(trainer.train_table) == 16 and len(trainer.eval_table) == 6
    trainer.train()
    expected = evaluate(cfg.output_dir, test_pairs)
    assert evaluate(cfg.output_dir, both) == expected
    assert evaluate(cfg.output_dir, test_only) == expected


def test_a_predicted_grade_stays_on_its_scale_and_evaluate_s_rmse_is_that_of_the_grades_score_writes(
        bert, tmp_path, monkeypatch):
    """The graded head is linear, so its reward read back on the scale could leave it: `accord score` wrote
    `<a>_predicted` 4.26 on a 0..4 scale (a mean no ratings can have, where the README says 'on the attribute's
    scale'), and `accord evaluate`'s rmse_<a> counted that error. The grade is now clipped to the scale, evaluate's
    rmse is the one of the grades score writes, and its Spearman still reads the rewards' own order."""
    import accord.reward.attributes as attributes_module

    cfg = config(bert, tmp_path, "grades", max_steps=1)
    RewardTrainer(cfg, train_data=graded_responses(16, seed=2)).train()
    real = attributes_module.predict_sequences

    def overshooting(*args, **kwargs):  # a head far past the rescaled -1..1, on both sides, in a known order
        predicted = real(*args, **kwargs)
        predicted["reward"] = 5.0 * np.sign(predicted["reward"] - predicted["reward"].mean(0)) + predicted["reward"]
        return predicted

    monkeypatch.setattr(attributes_module, "predict_sequences", overshooting)
    held_out = graded_responses(12, seed=4)
    scored = score(cfg.output_dir, held_out)
    metrics = evaluate(cfg.output_dir, held_out)
    for name in ATTRIBUTES:
        grade = scored[f"{name}_predicted"].to_numpy()
        assert ((grade >= 0) & (grade <= 4)).all(), grade
        assert {0.0, 4.0} <= set(grade)  # the overshoot reached both ends
        truth = held_out[f"{name}_mean"].to_numpy()
        assert metrics[f"rmse_{name}"] == pytest.approx(np.sqrt(np.mean((grade - truth) ** 2)), rel=1e-6)
        order = pd.Series(scored[f"reward_{name}"]).corr(pd.Series(truth), method="spearman")
        assert metrics[f"spearman_{name}"] == pytest.approx(order, rel=1e-6)


def test_the_combined_pair_probability_reads_the_uncertainty_head_as_a_single_reward_does(bert, tmp_path):
    """Was: p_chosen_model of a multi-attribute model was sigmoid(reward_chosen - reward_rejected) whatever its
    uncertainty head said, where a single-reward model's (and each attribute's) is sigmoid of the variance-scaled
    difference: the combined probability was more confident than the model's own reward_sd allows. The combined
    reward sum_k w_k r_k has variance reward_sd^2, and the same rule now applies to it, in score and evaluate."""
    cfg = config(bert, tmp_path, "combined", max_steps=2, uncertainty_head=True)
    RewardTrainer(cfg, train_data=attribute_pairs(16, seed=5)).train()
    pairs = attribute_pairs(6, seed=6)
    scored = score(cfg.output_dir, pairs[["prompt", "chosen", "rejected"]])
    variance = scored["reward_sd_chosen"] ** 2 + scored["reward_sd_rejected"] ** 2
    logit = (scored["reward_chosen"] - scored["reward_rejected"]) / np.sqrt(1.0 + np.pi / 8.0 * variance)
    np.testing.assert_allclose(scored["p_chosen_model"], 1.0 / (1.0 + np.exp(-logit)), rtol=1e-6)
    # evaluate's combined NLL is of those probabilities
    pairs["p_chosen"] = 1.0
    metrics = evaluate(cfg.output_dir, pairs)
    assert metrics["combined_nll"] == pytest.approx(float(-np.log(scored["p_chosen_model"]).mean()), rel=1e-5)


def test_the_length_a_combination_removes_counts_the_words_of_chat_messages_not_their_repr(llama, tmp_path):
    """Was: response_lengths counted the words of str() of a response given as chat messages (brackets, keys and
    roles: "[{'role': 'assistant', 'content': 'a b'}]" is 5 words), so a length-decorrelated combination corrected
    chat responses by another length than the same texts. Now it counts the assistant turns' content."""
    from accord.reward.attribute_combination import response_lengths, save_combination

    user = {"role": "user", "content": "why so"}
    answer = {"role": "assistant", "content": [{"type": "text", "text": "because it is"}]}
    assert response_lengths(["a b", [user, answer], np.array([answer], dtype=object)]).tolist() == [2.0, 3.0, 3.0]
    table = _as_chat(attribute_pairs(4, seed=4))
    cfg = config(llama, tmp_path, "lengths", max_steps=1, batch_size=4, stats_max_pairs=4)
    RewardTrainer(cfg, train_data=table).train()
    combination = FixedWeights({"helpful": 1.0}, [*ATTRIBUTES, "slack"], decorrelate_length=True)
    combination.length_slope_ = np.array([0.5, 0.0, 0.0, 0.0])
    combination.length_mean_ = 1.0
    save_combination(cfg.output_dir, combination)
    scored = score(cfg.output_dir, table[["chosen", "rejected"]])
    words = np.array([len(c[-1]["content"].split()) for c in table["chosen"]], dtype=float)
    np.testing.assert_allclose(scored["reward_chosen"], scored["reward_helpful_chosen"] - 0.5 * (words - 1.0),
                               rtol=1e-6)


def test_a_scale_no_one_declared_is_said_to_be_inferred_and_can_be_declared_by_columns(bert, tmp_path, capsys):
    """Was: a plain table of graded means (no metadata) had its scale taken as floor..ceil of the training means,
    and held-out means beyond it were refused as off 'the attribute's scale 1..4', a scale the user never gave, with
    no word of how to give the real one. Now the refusal says the scale was inferred and how to declare it, the
    table's scale_min / scale_max (or <a>_scale_min / <a>_scale_max) columns declare it, and an inferred scale takes
    the widest values the table gives (the interval <a>_lower / <a>_upper, not the means alone)."""
    from accord.reward.attributes import attribute_spec, read_attribute_table

    def plain(n: int, seed: int, low: float) -> pd.DataFrame:
        frame = graded_responses(n, seed)
        frame.attrs = {}
        for name in ATTRIBUTES:  # means in low..3.5, on a 0..4 scale no one declared
            frame[f"{name}_mean"] = np.maximum(frame[f"{name}_mean"], low)
        return frame

    train, held_out = plain(16, 2, low=1.5), plain(8, 3, low=0.5)
    train.to_csv(tmp_path / "train.csv", index=False)
    held_out.to_csv(tmp_path / "held_out.csv", index=False)
    common = ["train", "--task", "attributes", "--model", bert, "--max-steps", "1", "--batch-size", "8",
              "--no-progress"]
    assert accord_main([*common, "--train-path", str(tmp_path / "train.csv"), "--output-dir",
                        str(tmp_path / "inferred")]) == 0
    capsys.readouterr()
    assert accord_main(["evaluate", str(tmp_path / "inferred"), str(tmp_path / "held_out.csv")]) == 2
    error = capsys.readouterr().err
    assert "scale 1..4" in error and "inferred" in error and "scale_min and scale_max" in error, error
    # declared by the columns: the held-out means lie on it
    train.assign(scale_min=0, scale_max=4).to_csv(tmp_path / "declared.csv", index=False)
    assert accord_main([*common, "--train-path", str(tmp_path / "declared.csv"), "--output-dir",
                        str(tmp_path / "declared")]) == 0
    assert accord_main(["evaluate", str(tmp_path / "declared"), str(tmp_path / "held_out.csv")]) == 0
    one = train.assign(helpful_scale_min=-1, helpful_scale_max=5, scale_min=0, scale_max=4)
    assert attribute_spec(*read_attribute_table(one)).scales == [(-1.0, 5.0), (0.0, 4.0), (0.0, 4.0)]
    # inferred from the widest values given: an interval reaching 0.2 widens the scale to 0
    frame, meta = read_attribute_table(train.assign(helpful_lower=0.2, helpful_upper=3.9))
    spec = attribute_spec(frame, meta)
    assert spec.scales[0] == (0.0, 4.0) and spec.inferred == list(ATTRIBUTES)
