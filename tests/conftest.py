"""Shared test helpers: where the real data lives, and small judgment tables."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Under pytest-xdist (the README's `-n logical`) each worker would start torch's intra-op pool on every core, so two
# workers on two cores ran four busy threads: the workers split the cores instead.
_XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _XDIST_WORKERS > 1:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _XDIST_WORKERS))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "datasets"


def shared_data_or_skip(*parts: str) -> Path:
    """Path into ../shared/datasets, skipping the test (with the reason) when that folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (the shared datasets folder is absent)")
    return path


SMALL_PREFERENCES = pd.DataFrame(
    {
        "pair_id": ["p1", "p1", "p1", "p2", "p2", "p3", "p3", "p3"],
        "annotator": ["w1", "w2", "w3", "w1", "w4", "w2", "w3", "w4"],
        "label": ["A", "A", "B", "B", "B", "tie", "A", "tie"],
        "prompt": ["q1"] * 3 + ["q2"] * 2 + ["q3"] * 3,
        "response_a": ["a1"] * 3 + ["a2"] * 2 + ["a3"] * 3,
        "response_b": ["b1"] * 3 + ["b2"] * 2 + ["b3"] * 3,
    }
)


@pytest.fixture(autouse=True)
def _same_global_random_state_in_every_test():
    """Start every test from one global random state. Without it a test that draws from torch's global stream (an
    AutoDelta's start is a draw from the prior) saw whatever the tests before it left, so a test skipped on one
    machine (no shared data) changed what a later test drew there: CI failed where the same commit passed here."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def small_preferences() -> pd.DataFrame:
    """Three pairs with text, four annotators, one tie (a fresh copy per test)."""
    return SMALL_PREFERENCES.copy()


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread: small Pyro steps are slower when threads oversubscribe the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Rater models with settings that keep a fit on a tiny table short (what the edge-case and determinism tests check
# is behaviour, not accuracy): name -> (aggregation method, settings). Each draws random numbers somewhere
# (posterior draws, SVI's Monte Carlo ELBO, Gibbs sweeps).
QUICK_RATER_MODELS: dict[str, tuple[str, dict]] = {
    "dawid-skene": ("dawid-skene", {}),
    "dawid-skene-gibbs": ("dawid-skene", {"inference": "gibbs", "num_samples": 50, "num_warmup": 20}),
    "hierarchical-dawid-skene": ("hierarchical-dawid-skene", {"max_steps": 150, "num_samples": 30}),
    "hierarchical-dawid-skene-vb": ("hierarchical-dawid-skene", {"inference": "vb"}),
    "mace": ("mace", {}),
    "glad": ("glad", {"max_steps": 150, "num_samples": 30}),
    "bradley-terry": ("bradley-terry", {"max_steps": 60, "num_samples": 30}),  # needs response ids
}


def fit_quick(name: str, judgments: pd.DataFrame, seed: int = 0):
    """Fit the :data:`QUICK_RATER_MODELS` entry ``name``."""
    from accord.aggregate import make_method

    method, settings = QUICK_RATER_MODELS[name]
    return make_method(method, seed=seed, **settings).fit(judgments)


def logged_sums(trainer, even: bool = False) -> dict:
    """The sums the trainer's task logs for one step over all its training data (the core divides them by the
    step's examples), with every reward made exactly even first when ``even`` (the head zeroed)."""
    model, task, data = trainer.unwrapped(), trainer.task, trainer.train_data
    if even:
        with torch.no_grad():
            model.head.weight.zero_()
            model.head.bias.zero_()
    indices = np.arange(len(data))
    with torch.no_grad():
        _, sums = task.compute_loss(model, task.collate(data, indices), task.step_context(data, indices))
    return {name: float(value) / len(indices) for name, value in sums.items()}


def disk_full_while_writing(monkeypatch, name: str) -> None:
    """``Path.write_text`` of the atomic writer's temporary file for ``name`` (``.NAME.<random>``) writes half its
    text and then fails as a full disk does (ENOSPC); every other file is written as usual."""
    import errno

    written = Path.write_text

    def no_space(self, text, *args, **kwargs):
        if not self.name.startswith(f".{name}."):
            return written(self, text, *args, **kwargs)
        written(self, text[:len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", no_space)


def saved_train_and_test(folder: Path, train: pd.DataFrame, test: pd.DataFrame) -> tuple[Path, Path]:
    """``train`` and ``test`` saved by Hugging Face ``datasets`` as one DatasetDict folder (``folder/both``) and
    ``test`` alone as another (``folder/test-only``); the two folders."""
    import datasets

    split = {"train": datasets.Dataset.from_pandas(train), "test": datasets.Dataset.from_pandas(test)}
    both, test_only = folder / "both", folder / "test-only"
    datasets.DatasetDict(split).save_to_disk(str(both))
    datasets.DatasetDict({"test": split["test"]}).save_to_disk(str(test_only))
    return both, test_only
