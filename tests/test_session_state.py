"""A fit leaves the user's Python session as it found it: the global random streams of torch, numpy and Python
(the fit seeds itself from its ``seed`` setting), and Pyro's parameter store (a Pyro model of the user's own)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pyro
import pytest
import torch

from accord.datasets.synthetic import make_synthetic
from conftest import QUICK_RATER_MODELS, fit_quick

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_pairs=40, n_annotators=8, judgments_per_pair=3, seed=2)


def _streams(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _draws() -> tuple[float, float, float]:
    return float(torch.rand(1)), float(np.random.rand()), random.random()


@pytest.mark.parametrize("name", ["dawid-skene", "dawid-skene-gibbs", "hierarchical-dawid-skene", "mace"])
def test_a_fit_leaves_the_global_random_streams_as_they_were(name, synthetic):
    _streams(123)
    expected = _draws()
    _streams(123)
    fit_quick(name, synthetic.judgments, seed=0)
    assert _draws() == expected


def test_partial_fit_leaves_the_global_random_streams_as_they_were(synthetic):
    judgments = synthetic.judgments
    model = fit_quick("dawid-skene", judgments.iloc[:60])
    _streams(7)
    expected = _draws()
    _streams(7)
    model.partial_fit(judgments.iloc[60:])
    assert _draws() == expected


def test_a_fit_does_not_depend_on_the_global_random_streams(synthetic):
    """The fit seeds itself: what the user seeded (or drew) before it does not move its result."""
    _streams(1)
    first = fit_quick("hierarchical-dawid-skene", synthetic.judgments, seed=3)
    _streams(2)
    torch.rand(5)
    second = fit_quick("hierarchical-dawid-skene", synthetic.judgments, seed=3)
    pd.testing.assert_frame_equal(first.soft_labels_.to_frame(), second.soft_labels_.to_frame(), check_exact=True)


def test_a_pyro_fit_keeps_the_users_pyro_parameters(synthetic):
    pyro.clear_param_store()
    mine = pyro.param("my_weight", torch.tensor([1.5, -2.0]))
    pyro.param("AutoDiagonalNormal.loc", torch.zeros(3))  # a name the fit's guide uses
    try:
        fit_quick("hierarchical-dawid-skene", synthetic.judgments)
        store = pyro.get_param_store()
        assert set(store.keys()) == {"my_weight", "AutoDiagonalNormal.loc"}
        assert torch.equal(pyro.param("my_weight").detach(), mine.detach())
        assert torch.equal(pyro.param("AutoDiagonalNormal.loc").detach(), torch.zeros(3))
    finally:
        pyro.clear_param_store()


def test_a_pyro_fit_does_not_depend_on_the_users_pyro_parameters(synthetic):
    pyro.clear_param_store()
    first = fit_quick("hierarchical-dawid-skene", synthetic.judgments)
    pyro.param("AutoDiagonalNormal.loc", torch.zeros(3))
    pyro.param("AutoDiagonalNormal.scale", torch.ones(3), constraint=torch.distributions.constraints.positive)
    try:
        second = fit_quick("hierarchical-dawid-skene", synthetic.judgments)
    finally:
        pyro.clear_param_store()
    pd.testing.assert_frame_equal(first.soft_labels_.to_frame(), second.soft_labels_.to_frame(), check_exact=True)


@pytest.fixture(scope="module")
def mace_probs(synthetic):
    return fit_quick("mace", synthetic.judgments).soft_labels_.probs


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_an_svi_fit_under_the_users_no_grad_fits_as_without_it(mode, synthetic, mace_probs):
    """A notebook cell under ``torch.no_grad()`` (or ``inference_mode``) failed inside Pyro ('ELBO is cannot be
    differentiated'); the fit turns gradients on for itself, and the cell's mode is on again after it."""
    with mode():
        probs = fit_quick("mace", synthetic.judgments).soft_labels_.probs
        assert not torch.is_grad_enabled()
    pd.testing.assert_frame_equal(probs, mace_probs, check_exact=True)


def test_a_fit_does_not_depend_on_the_default_dtype(synthetic, mace_probs):
    """A session's float64 default dtype changed the SVI fit's draws (MACE's soft labels by ~0.1); the fit runs in
    the float32 it is written for, and the session's default is back after it."""
    torch.set_default_dtype(torch.float64)
    try:
        probs = fit_quick("mace", synthetic.judgments).soft_labels_.probs
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(torch.float32)
    pd.testing.assert_frame_equal(probs, mace_probs, check_exact=True)


def _gating_fit():
    from accord.reward.attribute_combination import GatingNetwork

    rng = np.random.default_rng(4)
    embedding, differences = rng.normal(size=(60, 3)), rng.normal(size=(60, 2))
    target = (differences[:, 0] > 0).astype(float)
    return GatingNetwork(["a", "b"], hidden=4, max_steps=20).fit(embedding, differences, target).params_


def test_a_gating_network_fit_leaves_the_session_as_it_was():
    """GatingNetwork.fit reseeded the caller's torch stream, failed under ``torch.no_grad()`` and fitted another
    network under a float64 default dtype; it now fits the same network in each case and leaves the session as
    it was."""
    plain = _gating_fit()
    _streams(9)
    expected = _draws()
    _streams(9)
    torch.set_default_dtype(torch.float64)
    try:
        with torch.no_grad():
            fitted = _gating_fit()
    finally:
        torch.set_default_dtype(torch.float32)
    assert _draws() == expected
    assert plain.keys() == fitted.keys()
    for name in plain:
        np.testing.assert_array_equal(fitted[name], plain[name], err_msg=name)


class _FailingModel(torch.nn.Module):
    """A model in training whose scoring fails (an error or a Ctrl-C part-way through an evaluation)."""

    pooling, hidden_size = "last", 4

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def forward(self, **batch):
        raise KeyboardInterrupt


def test_scoring_that_fails_leaves_a_training_model_in_training_mode():
    from accord.reward.data import TokenizedResponses
    from accord.reward.evaluate import predict_responses

    model = _FailingModel().train()
    encoded = TokenizedResponses(ids=[[1, 2, 3], [1, 2]], prompt_lengths=np.array([1, 1]), type_ids=None)
    with pytest.raises(KeyboardInterrupt):
        predict_responses(model, encoded, pad_token_id=0)
    assert model.training


def test_building_a_tiny_backbone_leaves_the_random_streams_as_they_were(tmp_path):
    from safetensors.torch import load_file

    from accord.reward.tiny import build_tiny_backbone

    _streams(5)
    expected = _draws()
    _streams(5)
    first = build_tiny_backbone(tmp_path / "a", "bert", texts=["a b c"], seed=1, num_hidden_layers=1)
    assert _draws() == expected
    second = build_tiny_backbone(tmp_path / "b", "bert", texts=["a b c"], seed=1, num_hidden_layers=1)
    weights = [load_file(str(path / "model.safetensors")) for path in (first, second)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


def test_the_report_draws_plain_text_under_the_users_usetex(synthetic, tmp_path):
    """A session with ``text.usetex`` on (LaTeX for a paper's figures) sent the report's labels to LaTeX: the
    report failed where LaTeX is not installed (and LaTeX reads the '_' of a name such as 'w_1' as markup)."""
    import matplotlib

    from accord.aggregate import make_method
    from accord.aggregate.report import write_report

    model = make_method("dawid-skene").fit(synthetic.judgments)
    with matplotlib.rc_context({"text.usetex": True}):
        out = write_report(tmp_path / "report", synthetic.judgments, model)
        assert matplotlib.rcParams["text.usetex"]
    assert (out / "report.html").exists() and any((out / "figures").glob("*.png"))
