"""What a fit changes of the user's Python session for itself and puts back after it: the global random streams
(a fit is seeded by its ``seed`` setting) and torch's defaults. A light module: the reward package imports it
without the rater models (and Pyro)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and Python's ``random`` (what ``pyro.set_rng_seed`` does, without importing Pyro)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # numpy's global seed takes 32 bits; torch's and Python's take more


@contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with torch, numpy and Python's ``random`` seeded with ``seed`` (:func:`seed_everything`), then
    leave the three global streams as they were: a fit is reproducible from its own seed and does not reseed the
    caller's streams (a notebook's ``torch.manual_seed(1)``, a fit, then ``torch.rand(1)`` drew the numbers of seed
    0 whatever the notebook had seeded)."""
    device = torch.device(device)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            seed_everything(seed)
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


@contextmanager
def fit_defaults() -> Iterator[None]:
    """Run the block with the torch defaults a fit is written for, whatever the session has set, and put the
    session's back after it: float32 as the default dtype (a session's float64 changed the SVI fits' random draws,
    MACE's soft labels by 0.12) and gradients on (a fit under ``torch.no_grad()`` or ``torch.inference_mode()``
    failed inside Pyro: 'ELBO is cannot be differentiated')."""
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        torch.set_default_dtype(dtype)
