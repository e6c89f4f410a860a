"""The SVI driver's own optimizer step is Pyro's ClippedAdam, number for number."""

from __future__ import annotations

import pytest
import torch
from pyro.optim import ClippedAdam as PyroClippedAdam

from accord.models.pyro_fit import ClippedAdam


@pytest.mark.parametrize("lrd", [1.0, 0.99])
def test_clipped_adam_matches_pyro(lrd: float) -> None:
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(7)]
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    pyro_optim = PyroClippedAdam({"lr": 0.1, "clip_norm": 10.0, "lrd": lrd})
    optimizer = ClippedAdam(0.1, clip_norm=10.0, lrd=lrd)
    for step in range(25):
        scale = 40.0 if step % 5 == 0 else 1.0  # some gradients beyond clip_norm, to exercise the clamp
        for params in (ours, theirs):
            (scale * sum(((p - 1.0) ** 4).sum() for p in params)).backward()
        optimizer.step(ours)
        pyro_optim(theirs)
        for p in theirs:  # what Pyro's SVI does after its step
            p.grad = torch.zeros_like(p.grad)
    for mine, reference in zip(ours, theirs):
        assert torch.equal(mine.detach(), reference.detach())
