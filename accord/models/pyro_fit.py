"""The one fitting driver of every Pyro rater model: SVI with any of the guides, or NUTS, and posterior draws.

A model is a plain Pyro function ``model(data, batch_size=None)`` (``batch_size``: the subsample size of its
subsampled plate). :func:`fit_pyro` fits it as the model's settings say (:class:`~accord.models.base.PyroRaterModel`)
and returns the draws of its latent sites, ``name -> [chains, draws, *shape]``:

- ``"map"``, ``"meanfield"``, ``"lowrank"``: an AutoDelta / AutoDiagonalNormal (AutoNormal when a plate is
  subsampled) / AutoLowRankMultivariateNormal guide, by SVI
  (``TraceEnum_ELBO`` when the model enumerates a discrete site; the guide then sees only the continuous ``sites``),
  with ClippedAdam and the convergence rule of :func:`run_svi`; one draw (the point) for MAP, ``num_samples`` from the
  guide otherwise. ``hold`` makes it a two-stage fit: MAP with those sites held at given values first, then the guide
  from that point with everything learned (a hierarchy's joint MAP is degenerate).
- ``"nuts"``: NUTS, chain after chain (:func:`run_nuts`).

Every fit starts at ``init`` where given (the warm start that keeps a fit off the mirror modes of label switching).
A loss or parameters that become NaN or infinite raise :class:`accord.FitError` with a hint, never a silent result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer import MCMC, NUTS, Trace_ELBO, TraceEnum_ELBO
from pyro.infer.autoguide import AutoDelta, AutoDiagonalNormal, AutoGuideList, AutoLowRankMultivariateNormal
from pyro.infer.autoguide import AutoNormal
from pyro.infer.autoguide.initialization import init_to_median, init_to_value
from pyro.infer.util import is_validation_enabled
from pyro.optim.clipped_adam import ClippedAdam
from tqdm.auto import tqdm

from accord.datasets import FitError

Draws = dict[str, torch.Tensor]


@dataclass
class SVIResult:
    """Loss history of one SVI run and whether the convergence rule stopped it."""

    losses: list[float] = field(default_factory=list)
    converged: bool = False

    @property
    def n_steps(self) -> int:
        return len(self.losses)


@dataclass
class PyroFit:
    """Draws ``name -> [chains, draws, *shape]``, and what the fit reports."""

    draws: Draws
    svi: SVIResult | None = None
    guide: Any = None
    svi_map: SVIResult | None = None  # the MAP stage of a two-stage fit
    diverging: np.ndarray | None = None  # [chains, draws] NUTS divergences


def fit_pyro(settings: Any, model: Callable[..., Any], data: Any, *, sites: list[str] | None = None,
             enumerated: bool = False, init: Draws | None = None, plates: Callable[..., Any] | None = None,
             map_normal: tuple[str, ...] = (), hold: tuple[Draws, int] | None = None, rank: int | None = None,
             vectorize_draws: bool = False, subsample: int | None = None,
             map_variants: Sequence[Callable[[], None]] = (), map_plateau_cuts: int = 0) -> PyroFit:
    """Fit ``model(data, subsample)`` as ``settings`` (a :class:`~accord.models.base.PyroRaterModel`) say.

    ``sites``: the continuous sites a guide covers (the model is blocked to them; ``None``: every latent site);
    ``enumerated``: the model enumerates a discrete site; ``plates``: the guide's ``create_plates``; ``map_normal``:
    sites that keep a mean-field Gaussian under MAP (exchangeable groups, whose point estimate sits at the group
    mean); ``hold``: ``(held site values, posterior steps)`` of a two-stage fit; ``vectorize_draws``: draw under
    one outer plate instead of one guide call per draw; ``map_variants``: set-ups of the model (each called before
    a run) from each of which the MAP stage of a two-stage fit runs; the run with the lowest final loss goes on;
    ``map_plateau_cuts``: :func:`run_svi`'s ``plateau_cuts`` in that MAP stage.
    """
    # the fit's parameters live in a store of their own for the fit: the caller's Pyro parameters (a model of their
    # own in the same session) were cleared by every fit, and are now where they were after it
    with pyro.get_param_store().scope():
        return _fit_pyro(settings, model, data, sites=sites, enumerated=enumerated, init=init, plates=plates,
                         map_normal=map_normal, hold=hold, rank=rank, vectorize_draws=vectorize_draws,
                         subsample=subsample, map_variants=map_variants, map_plateau_cuts=map_plateau_cuts)


def _fit_pyro(settings: Any, model: Callable[..., Any], data: Any, *, sites: list[str] | None,
              enumerated: bool, init: Draws | None, plates: Callable[..., Any] | None, map_normal: tuple[str, ...],
              hold: tuple[Draws, int] | None, rank: int | None, vectorize_draws: bool, subsample: int | None,
              map_variants: Sequence[Callable[[], None]], map_plateau_cuts: int) -> PyroFit:
    inference = settings.inference
    if inference == "nuts":
        samples, diverging = run_nuts(model, data, None, init_values=init, num_samples=settings.num_samples,
                                      num_warmup=settings.num_warmup, num_chains=settings.num_chains,
                                      seed=settings.seed, progress=settings.progress,
                                      max_plate_nesting=2 if enumerated else None)
        return PyroFit(samples, diverging=diverging)
    pyro.clear_param_store()
    name = type(settings).__name__
    loss = TraceEnum_ELBO(max_plate_nesting=2) if enumerated else Trace_ELBO()
    steps, learning_rate, svi_map = settings.max_steps, settings.learning_rate, None
    rule = dict(tol=settings.tol, patience=settings.patience, progress=settings.progress,
                final_lr_fraction=settings.final_lr_fraction)
    if hold is not None:
        held, steps = hold
        stage = poutine.condition(model, data=held)
        best: tuple[SVIResult, Any, Draws, Callable[[], None] | None] | None = None
        for variant in map_variants or (None,):
            if variant is not None:
                variant()
            pyro.clear_param_store()
            # copies: the guide's parameters may take the start's tensors themselves, and the optimiser moves them
            start = {k: v.clone() for k, v in (init or {}).items()}
            guide = AutoDelta(stage, init_loc_fn=init_to_value(values=start, fallback=init_to_median))
            result = run_svi(stage, guide, loss, data, subsample, max_steps=settings.max_steps,
                             learning_rate=learning_rate, description=f"{name} (MAP)", **rule,
                             plateau_cuts=map_plateau_cuts)
            if best is None or result.losses[-1] < best[0].losses[-1]:
                with torch.no_grad():
                    point = {**held, **{k: v.detach().clone() for k, v in guide.median(data, None).items()}}
                best = (result, guide, point, variant)
        assert best is not None
        svi_map, point_guide, init, chosen = best
        if chosen is not None:
            chosen()  # the kept run's set-up stays for the posterior stage and for whatever reads the fit
        if inference == "map":
            return PyroFit({k: v[None, None] for k, v in init.items()}, svi_map, point_guide, svi_map)
        pyro.clear_param_store()
        learning_rate /= 2
    init_fn = init_to_value(values=init, fallback=init_to_median) if init is not None else init_to_median
    guide = make_guide(model, inference, init_fn, sites=sites, plates=plates, map_normal=map_normal,
                       init_scale=settings.init_scale, rank=rank, subsample=subsample)
    svi = run_svi(model, guide, loss, data, subsample, max_steps=steps, learning_rate=learning_rate,
                  description=f"{name}({inference})", **rule)
    n_draws = 1 if inference == "map" else settings.num_samples
    # the draws' plate left of every model plate (an enumerated model's items sit at dim -2)
    draws = posterior_draws(guide, n_draws, data, None, vectorize=vectorize_draws, dim=-3 if enumerated else -2)
    return PyroFit(draws, svi, guide, svi_map)


def make_guide(model: Callable[..., Any], inference: str, init_fn: Callable[..., Any], *, sites: list[str] | None,
               plates: Callable[..., Any] | None, map_normal: tuple[str, ...], init_scale: float,
               rank: int | None, subsample: int | None = None) -> Any:
    # autoguides cannot handle an enumerated discrete site: the model is blocked to its continuous sites
    blocked = poutine.block(model, expose=sites) if sites is not None else model
    if inference == "map" and map_normal:
        guide = AutoGuideList(model)
        guide.append(AutoDelta(poutine.block(model, hide=list(map_normal)), init_loc_fn=init_fn))
        guide.append(AutoNormal(poutine.block(model, expose=list(map_normal)), init_loc_fn=init_fn,
                                init_scale=init_scale))
        return guide
    if inference == "map":
        return AutoDelta(blocked, init_loc_fn=init_fn, create_plates=plates)
    if inference == "meanfield" and subsample is None:
        # the same mean-field family as AutoNormal in one flat loc and one flat scale vector: one Gaussian site and
        # two parameters instead of two sites and two parameters per latent site (half the cost of a small step)
        return AutoDiagonalNormal(blocked, init_loc_fn=init_fn, init_scale=init_scale)
    if inference == "meanfield":
        return AutoNormal(blocked, init_loc_fn=init_fn, init_scale=init_scale, create_plates=plates)
    return AutoLowRankMultivariateNormal(blocked, init_loc_fn=init_fn, init_scale=init_scale, rank=rank)


def posterior_draws(guide: Any, n_draws: int, *args: Any, vectorize: bool = False, dim: int = -2) -> Draws:
    """``name -> [1, n_draws, *shape]`` draws of every site of a fitted guide (its median for one draw).

    ``vectorize``: one guide call under an outer plate at dimension ``dim``, left of the model's plates (one call
    per draw costs ~10 ms of Pyro overhead)."""
    with torch.no_grad():
        if n_draws == 1:
            return {name: value.detach()[None, None] for name, value in guide.median(*args).items()}
        if vectorize:
            shapes = {name: value.shape for name, value in guide(*args).items()}
            with pyro.plate("_posterior_draws", n_draws, dim=dim):
                stacked = guide(*args)
            return {name: stacked[name].detach().reshape(1, n_draws, *shape) for name, shape in shapes.items()}
        collected: dict[str, list[torch.Tensor]] = {}
        for _ in range(n_draws):
            for name, value in guide(*args).items():
                collected.setdefault(name, []).append(value.detach())
    return {name: torch.stack(values)[None] for name, values in collected.items()}


def run_svi(model: Callable[..., Any], guide: Callable[..., Any], loss: Any, *args: Any, max_steps: int = 2000,
            learning_rate: float = 0.05, tol: float = 1e-4, patience: int = 20, progress: bool = False,
            description: str = "SVI", final_lr_fraction: float = 1.0, plateau_cuts: int = 0) -> SVIResult:
    """Fit ``guide`` to ``model`` by SVI with Pyro's ClippedAdam, one optimizer over all the guide's parameters
    (:func:`_with_params`); ``args`` go to both on every step.

    Stops when the mean loss over a window of ``patience`` steps differs from the previous window's by less than
    ``tol`` (relative) or, for a stochastic loss twice in a row, by less than the Monte Carlo noise of that
    difference (:func:`window_noise`: a stochastic ELBO on small data is noisier than ``tol`` of its size, so the
    relative rule alone ran every small fit to ``max_steps``), or after ``max_steps``; ``tol=0`` runs every one of
    the ``max_steps``. ``final_lr_fraction`` < 1 decays the learning rate geometrically to that fraction of
    ``learning_rate`` at ``max_steps`` (less Monte Carlo jitter at the end). ``plateau_cuts`` > 0: where the rule
    would stop, the rate is cut to a tenth instead and the run goes on, that many times.
    """
    decay = final_lr_fraction ** (1.0 / max(max_steps, 1))
    store = pyro.get_param_store()
    optimizer: ClippedAdam | None = None
    known = 0
    result = SVIResult()
    window: list[float] = []
    previous_mean: float | None = None
    previous_noise, settled = 0.0, 0
    validate = is_validation_enabled()
    bar = tqdm(range(max_steps), desc=description, disable=not progress, leave=False)
    for step in bar:
        try:
            # Pyro's argument and support checks catch a wrong model or data on the first step; after that they
            # are a large share of a small step and would only meet NaN or infinite values, which the checks below catch
            with pyro.validation_enabled(validate and step == 0):
                if optimizer is None or len(store) != known:
                    # the guide creates its parameters on its first call: collect them as SVI.step does
                    with poutine.trace(param_only=True) as capture:
                        objective = loss.differentiable_loss(model, guide, *args)
                    optimizer = _with_params(optimizer, capture.trace, learning_rate, decay)
                    known = len(store)
                else:
                    objective = loss.differentiable_loss(model, guide, *args)
                value = float(objective.detach())
                if optimizer is not None and objective.requires_grad:
                    objective.backward()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=False)  # as SVI: zero gradients, so momentum moves unused ones
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
        if len(window) == patience and tol > 0:
            mean, noise = sum(window) / patience, window_noise(window)
            change = abs(previous_mean - mean) if previous_mean is not None else math.inf
            # twice in a row: one window within the noise can be chance while the guide's scales are still growing
            settled = settled + 1 if change <= max(tol * max(abs(mean), 1.0),
                                                   2.0 * math.hypot(noise, previous_noise)) else 0
            if (settled == 2 or (settled == 1 and noise == 0.0)) and plateau_cuts > 0 and optimizer is not None:
                # settled at this rate: go on at a tenth of it (Adam at a fixed rate hovers about an optimum with
                # kinks, and where it stops then follows rounding; smaller steps settle into it)
                plateau_cuts -= 1
                for group in optimizer.param_groups:
                    group["lr"] *= 0.1
                settled, previous_mean = 0, None
                window.clear()
                continue
            if settled == 2 or (settled == 1 and noise == 0.0):
                result.converged = True
                break
            previous_mean, previous_noise = mean, noise
            window.clear()
        if progress and step % 25 == 0:
            bar.set_postfix(loss=f"{value:.4g}")
    bar.close()
    for name, param in pyro.get_param_store().items():
        if not torch.isfinite(param).all():
            raise FitError(f"{description}: parameter '{name}' is not finite after fitting; try a smaller "
                           "learning_rate")
    return result


def _with_params(optimizer: ClippedAdam | None, trace: Any, learning_rate: float, decay: float) -> ClippedAdam | None:
    """One ClippedAdam over the parameters of a param-only trace (``optimizer`` extended by any it lacks).

    ``pyro.optim.ClippedAdam`` keeps one torch optimizer per parameter and costs a few milliseconds a step in its
    wrapper; Pyro's ClippedAdam optimizer itself updates each parameter element-wise (clipping each gradient
    element to +-10, the learning rate times ``decay`` every step), so one instance over all of them takes the same
    steps."""
    params = list({site["value"].unconstrained(): None for site in trace.nodes.values()})
    if optimizer is None:
        return ClippedAdam(params, lr=learning_rate, clip_norm=10.0, lrd=decay) if params else None
    seen = {p for group in optimizer.param_groups for p in group["params"]}
    fresh = [p for p in params if p not in seen]
    if fresh:
        optimizer.add_param_group({"params": fresh})
    return optimizer


def window_noise(losses: list[float]) -> float:
    """Standard error of the mean of a window of losses from their step-to-step differences (which a trend in the
    window barely affects): ``sd(diff) / sqrt(2 n)``; 0 for a deterministic loss (MAP)."""
    if len(losses) < 3:
        return 0.0
    diffs = np.diff(np.asarray(losses))
    return float(diffs.std(ddof=1) / math.sqrt(2.0 * len(losses)))


def run_nuts(model: Callable[..., Any], *args: Any, init_values: Draws | None = None, num_samples: int = 500,
             num_warmup: int = 500, num_chains: int = 2, seed: int = 0, max_plate_nesting: int | None = 2,
             progress: bool = False) -> tuple[Draws, np.ndarray]:
    """NUTS (enumerating discrete sites marked ``infer={"enumerate": "parallel"}``), one chain after another.

    Returns draws ``name -> [chains, draws, *shape]`` and the ``[chains, draws]`` divergence flags. Chains run in
    this process one by one (Pyro's multi-chain mode spawns processes, which costs more than it saves for small data
    on a few cores), each seeded ``seed + 1000 * chain`` (modulo 2**32) and started at ``init_values`` (e.g. a
    variational fit) so that all chains explore the same labelling of the classes; without them, at the prior
    median. ``jit_compile`` stays off: it rests on ``torch.jit.trace``, deprecated in recent torch.
    """
    chains: list[Draws] = []
    diverging = np.zeros((num_chains, num_samples), dtype=bool)
    for chain in range(num_chains):
        pyro.set_rng_seed((seed + 1000 * chain) % 2**32)  # numpy takes seeds below 2**32 only
        # no start: the prior median, as SVI's (init_to_value's own fallback, init_to_uniform, began each chain at
        # a random point of (-2, 2) in every site's unconstrained space)
        start = init_to_value(values=init_values) if init_values else init_to_median
        kernel = NUTS(model, max_plate_nesting=max_plate_nesting, jit_compile=False, max_tree_depth=8,
                      init_strategy=start)
        mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=num_warmup, disable_progbar=not progress)
        mcmc.run(*args)
        samples = mcmc.get_samples()
        for name, value in samples.items():
            if not torch.isfinite(value).all():
                raise FitError(f"NUTS: draws of '{name}' are not finite; the sampler diverged")
        chains.append(samples)
        steps = np.asarray(mcmc.diagnostics().get("divergences", {}).get("chain 0", []), dtype=np.int64)
        diverging[chain, steps[(steps >= 0) & (steps < num_samples)]] = True
    return {name: torch.stack([c[name] for c in chains]) for name in chains[0]}, diverging
