"""Running Pyro's SVI with a convergence rule and divergence checks, and NUTS chain by chain.

Every rater model is one Pyro model function; this module fits it. The rule: stop when the relative change of a
moving average of the ELBO loss over ``patience`` steps falls below ``tol``, or after ``max_steps``. A loss that
becomes NaN or infinite, or parameters that do, raise :class:`accord.FitError` with a hint, never a silent result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyro
import torch
from pyro.infer import MCMC, NUTS, SVI
from pyro.optim import ClippedAdam
from tqdm.auto import tqdm

from accord.datasets import FitError


@dataclass
class SVIResult:
    """Loss history of one SVI run and whether the convergence rule stopped it."""

    losses: list[float] = field(default_factory=list)
    converged: bool = False

    @property
    def n_steps(self) -> int:
        return len(self.losses)


def run_svi(
    model: Callable[..., Any],
    guide: Callable[..., Any],
    loss: Any,
    *args: Any,
    max_steps: int = 2000,
    learning_rate: float = 0.05,
    tol: float = 1e-4,
    patience: int = 20,
    progress: bool = False,
    description: str = "SVI",
    final_lr_fraction: float = 1.0,
    min_steps: int = 0,
    **kwargs: Any,
) -> SVIResult:
    """Fit ``guide`` to ``model`` by SVI with ClippedAdam; ``args``/``kwargs`` go to both on every step.

    ``final_lr_fraction`` < 1 decays the learning rate geometrically so that it reaches that fraction of
    ``learning_rate`` at ``max_steps`` (less Monte Carlo jitter at the end); ``min_steps`` steps run before the
    convergence rule may stop the fit.
    """
    decay = final_lr_fraction ** (1.0 / max(max_steps, 1))
    optimizer = ClippedAdam({"lr": learning_rate, "clip_norm": 10.0, "lrd": decay})
    svi = SVI(model, guide, optimizer, loss=loss)
    result = SVIResult()
    window: list[float] = []
    previous_mean: float | None = None
    bar = tqdm(range(max_steps), desc=description, disable=not progress, leave=False)
    for step in bar:
        try:
            value = float(svi.step(*args, **kwargs))
        except (ValueError, RuntimeError) as error:
            text = str(error).lower()
            if any(word in text for word in ("nan", "invalid values", "infinite", "not finite")):
                raise FitError(
                    f"{description}: the fit diverged at step {step} (parameters became NaN or infinite); "
                    "try a smaller learning_rate or a vb/MAP fit first"
                ) from error
            raise
        if not math.isfinite(value):
            raise FitError(
                f"{description}: the ELBO became {value} at step {step}; try a smaller learning_rate, "
                "a MAP or vb fit first, or check for annotators or pairs with contradictory constraints"
            )
        result.losses.append(value)
        window.append(value)
        if len(window) == patience and step + 1 < min_steps:
            previous_mean = sum(window) / patience
            window.clear()
        elif len(window) == patience:
            mean = sum(window) / patience
            if previous_mean is not None and abs(previous_mean - mean) <= tol * max(abs(mean), 1.0):
                result.converged = True
                break
            previous_mean = mean
            window.clear()
        if progress and step % 25 == 0:
            bar.set_postfix(loss=f"{value:.4g}")
    bar.close()
    check_finite_params(description)
    return result


def check_finite_params(description: str) -> None:
    """Raise :class:`FitError` when any parameter in Pyro's store is NaN or infinite."""
    for name, value in pyro.get_param_store().items():
        if not torch.isfinite(value).all():
            raise FitError(f"{description}: parameter '{name}' is not finite after fitting; try a smaller learning_rate")


@dataclass
class NUTSResult:
    """Posterior draws of NUTS, ``name -> array [chains, draws, *shape]``, and per-draw divergences."""

    samples: dict[str, torch.Tensor]
    diverging: torch.Tensor  # [chains, draws] bool


def run_nuts(
    model: Callable[..., Any],
    *args: Any,
    init_values: dict[str, torch.Tensor] | None = None,
    num_samples: int = 500,
    num_warmup: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    max_plate_nesting: int = 2,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 8,
    progress: bool = False,
    **kwargs: Any,
) -> NUTSResult:
    """NUTS (enumerating discrete sites marked ``infer={"enumerate": "parallel"}``), one chain after another.

    Chains run in this process, one by one (Pyro's multi-chain mode spawns processes, which costs more than it saves
    for small data on a few cores); every chain starts at ``init_values`` (e.g. a variational fit) so that all
    chains explore the same labelling of the classes. ``jit_compile`` stays off: it rests on ``torch.jit.trace``,
    deprecated in recent torch.
    """
    from pyro.infer.autoguide.initialization import init_to_value

    chains: list[dict[str, torch.Tensor]] = []
    diverging: list[torch.Tensor] = []
    for chain in range(num_chains):
        pyro.set_rng_seed(seed + 1000 * chain)
        kernel = NUTS(
            model,
            max_plate_nesting=max_plate_nesting,
            jit_compile=False,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
            init_strategy=init_to_value(values=init_values or {}),
        )
        mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=num_warmup, num_chains=1,
                    disable_progbar=not progress)
        mcmc.run(*args, **kwargs)
        samples = mcmc.get_samples()
        for name, value in samples.items():
            if not torch.isfinite(value).all():
                raise FitError(f"NUTS: draws of '{name}' are not finite; the sampler diverged")
        chains.append(samples)
        flags = torch.zeros(num_samples, dtype=torch.bool)
        steps = [int(t) for t in mcmc.diagnostics().get("divergences", {}).get("chain 0", []) if 0 <= int(t) < num_samples]
        flags[steps] = True
        diverging.append(flags)
    stacked = {name: torch.stack([c[name] for c in chains]) for name in chains[0]}
    return NUTSResult(stacked, torch.stack(diverging))
