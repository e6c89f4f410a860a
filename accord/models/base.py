"""The rater-model contract: what every annotator model implements, and what it gets from :class:`RaterModel`.

Settings. A model is a keyword-only dataclass of its settings (every subclass is made one): the constructor only
stores them, each under its own name, so ``get_params``, ``set_params``, ``clone`` and ``sklearn.base.clone`` work;
``fit`` learns; fitted attributes end in ``_``. The shared settings are declared once, in :class:`RaterModel` and
(the Pyro fitting driver's) :class:`PyroRaterModel`; a model declares its own and new defaults of shared ones.

A model implements ``_fit(encoded)``, which leaves

- ``self._item_summary``: an :class:`ItemSummary` of each pair's posterior class probabilities, from posterior draws
  (:func:`summarize_draws`) or a closed form;
- :meth:`_rater_confusion` and :meth:`_class_prior_draws` answerable: each rater's confusion matrix ``theta[k, l] =
  P(vote l | true label k)`` under each posterior draw (on a typical item where it depends on the item) and the class
  prior under each draw (by default the attribute ``_class_prior``); the annotator table is computed from them;
- :meth:`_posterior_draws` and :meth:`_loglik_draws` answerable (what :meth:`to_arviz` exports; by default the
  attributes ``_posterior`` and ``_loglik``);

and :meth:`predictive_loglik`. It gets ``soft_labels_``, ``annotators_``, :meth:`to_arviz` (for ``az.loo``,
``az.compare``), the held-out log-likelihood behind :func:`accord.models.compare`, ``fit_predict(_proba)``;
``annotators_`` is computed when first asked for (:class:`deferred`).

The annotator table ``annotators_``, one row per annotator, has the same columns with the same meaning for every
model, computed from the confusion matrices ``theta`` and class prior ``pi`` under each posterior draw:

=================  ================================================================================================
``n_judgments``    the annotator's judgments
``reliability``    ``sum_k pi_k theta[k, k]``: the probability that the rater's vote equals the true label of a pair
                   drawn from the class prior
``spam``           ``1 - mean_{k < k'} TV(theta[k], theta[k'])``: 1 when the vote does not depend on the truth (the
                   rows are alike), 0 when it determines it (a perfect rater, or a perfect flipper)
``position_bias``  preference data: ``(P("A" | A) + P("A" | B)) / 2 - 1/2`` among votes for A or B, the propensity to
                   say "A" whatever the truth (0: none); NaN for other data and for models without one
=================  ================================================================================================

each with ``_lower`` / ``_upper``, the 5% and 95% quantiles over the posterior draws (equal to the mean for a point
estimate); model-specific quantities follow under names of their own (GLAD ``ability``, MACE ``competence``, crowd
Bradley-Terry ``sharpness``, ...).
"""

from __future__ import annotations

import io
import math
import numbers
import os
import pickle
import warnings
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from accord._session import fit_defaults, seeded
from accord._settings import Settings
from accord.datasets import AccordError, Encoded, SoftLabels, validate
from accord.datasets.schema import check_two_classes, is_validated
from accord.models._data import encode_with_classes, shared_classes

INFERENCE_METHODS: tuple[str, ...] = ("vb", "gibbs", "map", "meanfield", "lowrank", "nuts")
#: the inference methods fitted by SVI (a torch optimiser; the others are closed forms or a sampler)
SVI_INFERENCE: tuple[str, ...] = ("map", "meanfield", "lowrank")
# NUTS draws per chain below which Pyro's split R-hat (each chain halved, then halved again) cannot be computed
MIN_NUTS_SAMPLES = 4
#: annotators per block when summarising draws (bounds the memory of the annotator table)
ANNOTATOR_CHUNK = 8192


class ConvergenceWarning(UserWarning):
    """A fit stopped at its step or iteration limit before its convergence rule was met, or landed in a mirror
    mode and was moved back."""


@dataclass
class ItemSummary:
    """Per pair: the posterior mean class probabilities, and the sd and 90% interval of the top class's."""

    mean: np.ndarray  # [I, K]
    sd: np.ndarray  # [I]
    lower: np.ndarray  # [I]
    upper: np.ndarray  # [I]


def quantiles_90(draws: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """5% and 95% quantiles along ``dim`` (linear interpolation, as ``torch.quantile``), from partial sorts."""
    n = draws.shape[dim]
    if n == 1:
        return draws.squeeze(dim), draws.squeeze(dim)
    position = 0.05 * (n - 1)
    lo_index = int(position)
    frac = position - lo_index
    k = min(lo_index + 2, n)
    small = torch.topk(draws, k, dim=dim, largest=False, sorted=True).values
    large = torch.topk(draws, k, dim=dim, largest=True, sorted=True).values
    take = lambda t, i: t.select(dim, min(i, k - 1))  # noqa: E731
    lower = take(small, lo_index) * (1 - frac) + take(small, lo_index + 1) * frac
    upper = take(large, lo_index) * (1 - frac) + take(large, lo_index + 1) * frac
    return lower, upper


def _as_tensor(values: torch.Tensor | np.ndarray) -> torch.Tensor:
    return values if isinstance(values, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(values))


def mean_and_interval(draws: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean (in float64) and 5% / 95% quantiles (in the draws' dtype) over the first axis."""
    draws = _as_tensor(draws)
    lower, upper = quantiles_90(draws, dim=0)
    as_numpy = lambda t: t.double().cpu().numpy()  # noqa: E731
    return draws.mean(0, dtype=torch.float64).cpu().numpy(), as_numpy(lower), as_numpy(upper)


def summarize_draws(probs: torch.Tensor | np.ndarray, klass: int | None = None) -> ItemSummary:
    """:class:`ItemSummary` of ``[draws, pairs, classes]`` class probabilities (in float64): the sd and interval of
    each pair's top class, or of class ``klass`` (its index) where given."""
    probs = _as_tensor(probs).double()
    mean = probs.mean(0)
    mean = mean / mean.sum(-1, keepdim=True)
    top = mean.argmax(-1) if klass is None else torch.full_like(mean[:, 0], klass, dtype=torch.long)
    top_draws = probs.gather(2, top[None, :, None].expand(probs.shape[0], -1, 1))[..., 0]  # [D, I]
    lower, upper = quantiles_90(top_draws, dim=0)
    sd = top_draws.std(0) if probs.shape[0] > 1 else torch.full_like(lower, float("nan"))
    return ItemSummary(mean.numpy(), sd.numpy(), lower.numpy(), upper.numpy())


def concat_summaries(parts: list[ItemSummary]) -> ItemSummary:
    return ItemSummary(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(ItemSummary)))


def linear_in(earlier: np.ndarray, column: np.ndarray, tolerance: float = 1e-6) -> np.ndarray | None:
    """The coefficients that write ``column [n]`` (centred and scaled) as a linear function of the columns of
    ``earlier [n, k]``, to ``tolerance`` of its sd; None when it is not one. A covariate that others determine enters
    a model only through their sum, so its effect and theirs are split by the prior."""
    if earlier.shape[1] == 0:
        return None
    coef = np.linalg.lstsq(earlier, column, rcond=None)[0]
    return coef if (column - earlier @ coef).std() < tolerance else None


def check_positive(owner: Any, *names: str, zero: bool = False) -> None:
    """One error unless each named setting of ``owner`` (or each number of a tuple setting) is a finite number > 0
    (>= 0 with ``zero``). Written as a test of the good case: NaN fails every comparison, so ``if value <= 0: raise``
    let it through to a fit that failed far away, with a message about the data."""
    for name in names:
        value = getattr(owner, name)
        for number in value if is_numbers(value) else (value,):
            if isinstance(number, bool) or not isinstance(number, numbers.Real) or not (
                    math.isfinite(number) and (number >= 0 if zero else number > 0)):
                raise AccordError(f"{name} must be {'a finite number >= 0' if zero else 'a finite number > 0'}"
                                  f"{' each' if is_numbers(value) else ''}, not {value!r}")


def is_numbers(value: Any, length: int | None = None) -> bool:
    """Whether a setting holds several numbers (of ``length``, when given): a tuple, a list or a one-dimensional
    numpy array, which a prior's shapes read from a fitted model or computed with numpy are (an array was refused as
    'not the two shapes', or read as one bad number, where the list of the same numbers was taken)."""
    several = isinstance(value, (tuple, list)) or (isinstance(value, np.ndarray) and value.ndim == 1)
    return several and (length is None or len(value) == length)


def as_names(owner: Any, name: str) -> None:
    """The setting ``name`` of ``owner``, a sequence of names, stored as a tuple of them, as a list is: a numpy
    array or a pandas Index of names compared element by element, and ``ContextPreference(covariates=np.array([...]))``
    failed in its fit with numpy's 'truth value of an array is ambiguous'. A name is kept a plain text (numpy's
    ``np.str_('item_a')`` made the repr unreadable back); a tuple of texts is kept as the very object given, as
    ``sklearn.base.clone`` checks. ``None`` and a single text (a setting's own words, such as ``"auto"``) are left to
    the setting's own checks."""
    value = getattr(owner, name)
    if value is None or isinstance(value, str) or (isinstance(value, tuple) and all(type(v) is str for v in value)):
        return
    if isinstance(value, (dict, set, frozenset)) or not isinstance(value, Iterable) or getattr(value, "ndim", 1) != 1:
        raise AccordError(f"{name} must be a sequence of names (a list or a tuple), not {value!r}")
    setattr(owner, name, tuple(str(v) if isinstance(v, str) else v for v in value))


def is_one_of(value: Any, choices: Any) -> bool:
    """Whether a setting's value is one of ``choices`` (words, None): a numpy array given where a word belongs was
    compared element by element, and the check failed with numpy's 'truth value of an array is ambiguous' in place
    of the setting's own error."""
    return isinstance(value, Hashable) and value in choices


def check_switches(owner: Any) -> None:
    """One error for a True/False setting of the dataclass ``owner`` given as anything else: a switch given as text
    ('no', 'false') is truthy, so it switched the part on."""
    for field in fields(owner):
        if field.type in ("bool", bool) and not isinstance(getattr(owner, field.name), (bool, np.bool_)):
            raise AccordError(f"{field.name} must be True or False, not {getattr(owner, field.name)!r}")


def check_seed(value: Any, name: str = "seed") -> None:
    """One error unless ``value`` is a whole number in numpy's seed range ``0..2**32 - 1`` (not a bool): a seed of
    None, 2.5 or -1 failed far from the setting, in numpy's or torch's words, after the fit had run."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 2**32:
        raise AccordError(f"{name} must be a whole number in 0..2**32 - 1 (numpy's range), not {value!r}")


def check_device(value: Any, name: str = "device") -> None:
    """One error unless ``value`` names a torch device this machine has: a typo ('cuda0'), or 'cuda' where torch has
    no CUDA, failed deep in the fit with torch's traceback ('Expected one of cpu, cuda, ...', 'Torch not compiled
    with CUDA enabled'). ``name`` is the setting (or flag) the message names."""
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as err:
        raise AccordError(f"{name} must be a torch device such as 'cpu' or 'cuda', not {value!r}") from err
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():  # 0 where torch has no CUDA
        raise AccordError(f"{name} {value!r}: this machine has {torch.cuda.device_count()} CUDA device(s) that torch "
                          "can use; use 'cpu' (or another device)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise AccordError(f"{name} {value!r}: torch has no MPS device on this machine; use 'cpu'")


def random_state(device: torch.device) -> torch.Tensor:
    """The state of torch's global random stream on ``device`` (to take draws from it later: :func:`replay_random`)."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


@contextmanager
def replay_random(state: torch.Tensor, device: torch.device) -> Iterator[None]:
    """Run the block from a saved state of torch's global stream on ``device``, leaving the stream as it was."""
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        if cuda:
            torch.cuda.set_rng_state(state, device)
        else:
            torch.set_rng_state(state)
        yield


class deferred:
    """A fitted attribute computed on first access by the method a fit named (:meth:`RaterModel._defer`), then kept.

    What only some callers need (posterior draws, the annotator table) then costs nothing until it is asked for; a new
    fit or ``partial_fit`` names the method again and drops the kept value. Assigning the attribute stores it as usual.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        values = obj.__dict__
        if self.name not in values:
            method = values.get("_deferred", {}).get(self.name)
            if method is None:
                raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}")
            result = getattr(obj, method)()
            if self.name not in values:  # the method may set it (and others it computes at once) itself
                self.__set__(obj, result)
        return values[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__.get("_deferred", {}).pop(self.name, None)
        obj.__dict__[self.name] = value


def _the_model() -> Any:
    """Stands for the model in its pickled fitted state (:func:`_state_pickle`); only ever read through it."""
    raise AccordError("a rater model's fitted state was read apart from its model: unpickle the model itself")


def _state_pickle(model: "RaterModel") -> SimpleNamespace:
    """The pickle module with which ``torch.save`` / ``torch.load`` write and read ``model``'s fitted state: the
    model itself (a Pyro guide holds its model function, a bound method of the model) is written as a reference to
    :func:`_the_model` and read back as the model being restored, not written again inside its own state."""

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            return (_the_model, ()) if obj is model else NotImplemented

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) == (__name__, _the_model.__name__):
                return lambda: model
            return super().find_class(module, name)

    return SimpleNamespace(__name__="pickle", Pickler=Pickler, Unpickler=Unpickler, load=pickle.load)


@dataclass(kw_only=True, eq=False, repr=False)
class RaterModel(Settings, ABC):
    """Base class of accord's Bayesian annotator models (see the module docstring for the contract).

    Parameters (shared by every model; each model documents its own and which ``inference`` it supports)
    ----------
    inference
        ``"vb"`` closed-form variational Bayes where the model is conjugate, ``"gibbs"`` blocked Gibbs sampling where
        it is conjugate (exact posterior draws), ``"map"`` (SVI with AutoDelta), ``"meanfield"`` (SVI with
        AutoDiagonalNormal; AutoNormal when ``batch_size`` subsamples), ``"lowrank"`` (SVI with AutoLowRankMultivariateNormal) or ``"nuts"``.
    max_steps, tol
        At most ``max_steps`` SVI steps (closed form: iterations); SVI stops when the moving-average loss changes by
        less than ``tol`` (relative) over ``patience`` steps, a closed form when no pair's class probability moves
        by more than ``tol`` in an iteration.
    num_samples
        Posterior draws kept for soft-label uncertainty, intervals and ArviZ (``num_warmup`` more for NUTS, which
        needs at least 4 per chain).
    seed
        Seeds torch, numpy and Python for the fit (their global streams are left as they were before it): the
        same seed on the same machine gives identical results.
    device
        ``"cpu"``, ``"cuda"``: the same code runs on a GPU.
    progress
        Show a progress bar.
    """

    method: ClassVar[str] = "rater-model"
    supported_inference: ClassVar[tuple[str, ...]] = INFERENCE_METHODS
    #: whether the model has a position bias (otherwise the column is NaN)
    models_position_bias: ClassVar[bool] = True
    #: the fit reads columns of the table beyond the codes (``_prepare``): the validated table is kept for
    #: :meth:`partial_fit`, which refits on it and the new judgments
    reads_table: ClassVar[bool] = False
    #: what a fit on a table with no pair judged twice gives of the raters (the one warning of
    #: :meth:`_warn_if_no_overlap`)
    no_overlap_consequence: ClassVar[str] = ("the reliabilities are not learned from them and the soft labels may be "
                                             "over-confident")
    #: the annotator table, computed on first access (:class:`deferred`)
    annotators_ = deferred()

    inference: str = "vb"
    max_steps: int = 2000
    tol: float = 1e-4
    num_samples: int = 200
    seed: int = 0
    device: str = "cpu"
    progress: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(kw_only=True, eq=False, repr=False)(cls)

    def fit(self, judgments: pd.DataFrame) -> "RaterModel":
        """Learn annotator parameters and each pair's posterior from a judgments table."""
        return self._fit_table(judgments if is_validated(judgments) else validate(judgments))

    def fit_encoded(self, encoded: Encoded) -> "RaterModel":
        """Fit on an already-encoded judgments table (without the table's optional columns)."""
        return self._fit_table(None, encoded=encoded)

    def _fit_table(self, table: pd.DataFrame | None, classes: tuple[Any, ...] | None = None,
                   encoded: Encoded | None = None) -> "RaterModel":
        """Fit a validated table (or bare codes); ``classes`` lays the labels on a wider class set (a training fold
        that lacks a class its test fold has)."""
        if self.inference not in self.supported_inference:
            raise AccordError(
                f"{type(self).__name__} supports inference in {self.supported_inference}, not '{self.inference}'"
            )
        check_switches(self)
        # patience: a window of 0 or 2.5 losses is never full, so the convergence rule never ran (every max_steps)
        for name in ("max_steps", "posterior_steps", "num_samples", "batch_size", "rank", "num_chains", "patience"):
            value = getattr(self, name, None)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < 1):
                raise AccordError(f"{name} must be a whole number >= 1, not {value!r}")
        warmup = getattr(self, "num_warmup", 0)  # Pyro took -1 and None (as many as num_samples) without a word
        if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
            raise AccordError(f"num_warmup must be a whole number >= 0, not {warmup!r}")
        if self.inference == "nuts" and self.num_samples < MIN_NUTS_SAMPLES:
            # Pyro's chain diagnostics (split R-hat, read for the divergences) halve each chain: with fewer draws
            # the fit ended in a bare AssertionError from inside Pyro
            raise AccordError(f"num_samples must be at least {MIN_NUTS_SAMPLES} with inference 'nuts' (draws per "
                              f"chain), not {self.num_samples!r}")
        if getattr(self, "batch_size", None) is not None and self.inference in ("vb", "gibbs", "nuts"):
            raise AccordError(f"batch_size subsamples the pairs of SVI steps (inference 'map', 'meanfield' or "
                              f"'lowrank'); inference '{self.inference}' reads every judgment: drop batch_size or "
                              "choose an SVI inference")
        check_seed(self.seed)
        if isinstance(self.tol, bool) or not isinstance(self.tol, numbers.Real) or not 0 <= self.tol < math.inf:
            raise AccordError(f"tol must be a finite number >= 0 (0 runs every step), not {self.tol!r}")
        check_positive(self, *(name for name in ("learning_rate", "init_scale") if hasattr(self, name)))
        check_device(self.device)
        fraction = getattr(self, "final_lr_fraction", 1.0)
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction <= 1:
            raise AccordError(f"final_lr_fraction must be a number in (0, 1], not {fraction!r}")
        self._forget_fit()  # nothing of a previous fit (on another table) outlives this one
        try:
            with fit_defaults():
                self.encoded_ = encoded if encoded is not None else encode_with_classes(table, classes)
                check_two_classes(self.encoded_)
                self._cache: dict[str, Any] = {}
                self._table = table if self.reads_table else None
                self._prepare(table, self.encoded_)
                self._warn_if_no_overlap()
                with seeded(self.seed, self._torch_device):
                    self._fit(self.encoded_)
                    self._warn_if_unsettled()
                    self.soft_labels_ = self._soft_labels()
            self._defer("_annotator_table", "annotators_")
            # the settings of this fit: a set_params since leaves the fit as it was (compare and partial_fit read it)
            self._fitted_settings = self.get_params()
        except BaseException:
            # a fit that fails part-way leaves the model unfitted, not this table's codes beside the last fit's labels
            self._forget_fit()
            raise
        return self

    def _forget_fit(self) -> None:
        """Drop every fitted attribute and cache: all that the instance holds beyond its settings."""
        settings = {f.name for f in fields(self)}
        for name in [name for name in self.__dict__ if name not in settings]:
            del self.__dict__[name]

    def _defer(self, method: str, *names: str) -> None:
        """The fitted attributes ``names`` are computed by ``method`` on first access (an earlier value is dropped)."""
        pending = self.__dict__.setdefault("_deferred", {})
        for name in names:
            self.__dict__.pop(name, None)
            pending[name] = method

    def _prepare(self, table: pd.DataFrame | None, encoded: Encoded) -> None:
        """Read what the model needs from the raw table (before the random streams are seeded)."""

    def _judged_once(self) -> bool:
        """Whether nothing in the table tells how reliable a rater is: no pair has two judgments (agreement between
        judgments of a pair is the only such evidence where each pair has its own latent label)."""
        return int(np.bincount(self.encoded_.items, minlength=self.encoded_.n_items).max(initial=0)) < 2

    def _warn_if_no_overlap(self) -> None:
        """The one warning, shared by every rater model, that the judgments cannot tell a rater's reliability (the
        judgments tell how often each rater gives each label, never how often it is right)."""
        if self._judged_once():
            warnings.warn(f"{type(self).__name__}: no pair has two judgments, so the judgments cannot tell how "
                          f"reliable a rater is: {self.no_overlap_consequence} (judge some pairs twice to learn them)",
                          UserWarning, stacklevel=5)

    def _warn_if_unsettled(self) -> None:
        """Warn after a fit whose iterative stages stopped at their step limit unconverged (see
        :meth:`PyroRaterModel._keep_fit`; closed-form fits warn where their loop ends)."""

    @abstractmethod
    def _fit(self, encoded: Encoded) -> None: ...

    def partial_fit(self, new_judgments: pd.DataFrame, *, duplicates: str = "error") -> "RaterModel":
        """Add judgments to a fitted model and refit, reusing the fitted state where the model can (a warm start:
        :func:`accord.models.incremental.partial_fit`); the result is a fit on all judgments (where the fit has more
        than one fixed point, the one nearest the previous fit); a model not fitted yet is fitted on them, as ``fit``.
        ``duplicates="keep"`` adds judgments of a pair by a rater who judged it before; by default that is an error,
        as it is for one table (a batch given twice)."""
        from accord.models.incremental import partial_fit

        return partial_fit(self, new_judgments, duplicates=duplicates)

    def fit_predict(self, judgments: pd.DataFrame) -> pd.Series:
        """Fit and return the most likely label of each pair."""
        return self.fit(judgments).soft_labels_.hard()

    def fit_predict_proba(self, judgments: pd.DataFrame) -> pd.DataFrame:
        """Fit and return the posterior class probabilities of each pair."""
        return self.fit(judgments).soft_labels_.probs

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The settings, by name (``set_params`` and ``clone`` read them: :class:`accord._settings.Settings`)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (and ``copy.deepcopy``): the settings as they are, the fitted state as one ``torch.save``, which
        writes each tensor's data once. Pickle writes a tensor with all the data its storage holds, and fitted
        tensors are views of shared storages (every site of an SVI guide's draws is a slice of one latent draw, a
        reshape shares its source's data, the per-draw parameters of the context and rater-type models slice all
        the draws): a context model's pickle held every draw once per draw, 60 MB for a fit of 1.6 MB."""
        settings = {f.name for f in fields(self)}
        state = {name: value for name, value in self.__dict__.items() if name in settings}
        fitted = {name: value for name, value in self.__dict__.items() if name not in settings}
        if fitted:
            buffer = io.BytesIO()
            torch.save(fitted, buffer, pickle_module=_state_pickle(self), pickle_protocol=pickle.DEFAULT_PROTOCOL)
            state["_fitted_state"] = buffer.getvalue()
        return state

    def __copy__(self) -> "RaterModel":
        """A shallow copy shares the fitted attributes (without this it would go through :meth:`__getstate__`), not
        the note of those still to compute: with one note, the first copy to compute an attribute took it off for
        both, and the other lost the attribute ('no attribute annotators_')."""
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        if "_deferred" in self.__dict__:
            twin.__dict__["_deferred"] = dict(self.__dict__["_deferred"])
        return twin

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        packed = state.pop("_fitted_state", None)
        self.__dict__.update(state)
        if packed is not None:
            if os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0") not in ("0", ""):
                # torch then refuses every full load, ours too, with 'Can not safely load weights when explicit
                # pickle_module is specified': the pickle itself was already read in full, but say what to do
                raise AccordError(f"{type(self).__name__}: a pickled rater model cannot be loaded while "
                                  "TORCH_FORCE_WEIGHTS_ONLY_LOAD is set (its fitted state holds pandas tables and "
                                  "Pyro guides, not weights only); unset it to load the model")
            location = None
            try:
                check_device(self.device)
            except AccordError:
                # fitted on a GPU this machine lacks: torch would stop at the first CUDA tensor ('Attempting to
                # deserialize object on a CUDA device'); the state is the same on the CPU
                warnings.warn(f"{type(self).__name__} was fitted on device {self.device!r}, which this machine does "
                              "not have: its fitted state is loaded on the CPU and its device set to 'cpu'",
                              stacklevel=2)
                self.device, location = "cpu", "cpu"
            # the full unpickler, as pickle itself is: the state holds pandas objects, Pyro guides and dataclasses
            self.__dict__.update(torch.load(io.BytesIO(packed), map_location=location, weights_only=False,
                                            pickle_module=_state_pickle(self)))

    @property
    def runs_svi(self) -> bool:
        """Whether :meth:`fit` runs SVI: its first step makes a torch optimiser, whose constructor imports
        ``torch._dynamo`` (and sympy), 0.8 s once per process that a caller timing the fit imports before it."""
        return self.inference in SVI_INFERENCE

    @property
    def _torch_device(self) -> torch.device:
        return torch.device(self.device)

    def _check_fitted(self) -> None:
        if not hasattr(self, "soft_labels_"):
            raise AccordError(f"{type(self).__name__} is not fitted yet: call fit(judgments) first")

    def _soft_classes(self) -> list[Any]:
        return list(self.encoded_.classes)

    def _soft_extra(self) -> pd.DataFrame | None:
        return None

    def _soft_labels(self) -> SoftLabels:
        summary, encoded = self._item_summary, self.encoded_
        index = encoded.item_index
        mean = np.asarray(summary.mean, dtype=float)
        sd = np.asarray(summary.sd, dtype=float)
        interval = None
        if np.isfinite(sd).any():
            interval = pd.DataFrame({"lower": np.asarray(summary.lower), "upper": np.asarray(summary.upper)},
                                    index=index)
        return SoftLabels(
            probs=pd.DataFrame(mean / mean.sum(axis=1, keepdims=True), index=index, columns=self._soft_classes()),
            uncertainty=pd.Series(sd, index=index, name="uncertainty"),
            n_judgments=pd.Series(np.bincount(encoded.items, minlength=encoded.n_items), index=index,
                                  name="n_judgments"),
            method=self.method,
            interval=interval,
            extra=self._soft_extra(),
        )

    def _rater_confusion(self, lo: int, hi: int) -> torch.Tensor:
        """``[draws, hi - lo, K, L]``: the confusion matrices of annotators ``lo..hi-1`` under each draw."""
        raise NotImplementedError

    def _class_prior_draws(self) -> torch.Tensor:
        """``[draws, K]``: the class prior under each draw."""
        return self._class_prior

    def _rater_columns(self) -> dict[str, np.ndarray]:
        """The model's own annotator columns."""
        return {}

    def _annotator_table(self) -> pd.DataFrame:
        encoded = self.encoded_
        pi = self._class_prior_draws().float()
        bias = self.models_position_bias and encoded.form != "categorical" and self._soft_classes()[:2] == ["A", "B"]
        blocks = [confusion_columns(self._rater_confusion(lo, min(lo + ANNOTATOR_CHUNK, encoded.n_workers)).float(),
                                    pi, bias) for lo in range(0, encoded.n_workers, ANNOTATOR_CHUNK)]
        columns = {"n_judgments": np.bincount(encoded.workers, minlength=encoded.n_workers)}
        columns.update({name: np.concatenate([block[name] for block in blocks]) for name in blocks[0]})
        columns.update(self._rater_columns())
        return pd.DataFrame(columns, index=encoded.worker_index)

    def _posterior_draws(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        """``name -> (array [chains, draws, *shape], dims)``: the posterior draws :meth:`to_arviz` exports."""
        return self._posterior

    def _loglik_draws(self) -> np.ndarray:
        """``[chains, draws, n_judgments]``: each judgment's log-likelihood given the other judgments of its pair (or
        of its rater, for models whose judgments share a latent by rater) under each draw, the terms PSIS-LOO needs
        (the non-factorised case of Bürkner, Gabry & Vehtari 2021)."""
        try:
            return self._loglik
        except AttributeError:  # a model of one's own that leaves none: to_arviz names it
            raise NotImplementedError from None

    def _extra_coords(self) -> dict[str, Any]:
        return {}

    def to_arviz(self) -> Any:
        """An ``arviz.InferenceData`` with the posterior draws and a per-judgment ``log_likelihood`` group (so
        ``az.loo``, ``az.waic``, ``az.compare`` work), ``observed_data`` (each judgment's class code) and, after NUTS,
        ``sample_stats`` with ``diverging``; named dimensions ``annotator``, ``pair_id``, ``class``, ``true_class``,
        ``judgment`` (in the order of the fitted table's rows), with the table's ids as coordinates. The arrays are
        copies: editing them leaves the model as it was.

        Only NUTS and Gibbs draws are Markov chains, on which ``r_hat`` and ESS say something; the draws of a
        ``"vb"``, ``"meanfield"`` or ``"lowrank"`` fit are independent draws of the approximate posterior, one chain,
        so ``r_hat`` near 1 says nothing about the fit (every group's ``attrs["inference"]`` names the method). A
        MAP fit has one draw, on which PSIS-LOO is not defined (ArviZ fails inside ``az.loo``;
        :func:`~accord.models.compare` leaves such fits out of its LOO column)."""
        import arviz as az

        self._check_fitted()
        encoded = self.encoded_
        coords: dict[str, Any] = {"annotator": np.asarray(encoded.worker_index.astype(str)),
                                  "pair_id": np.asarray(encoded.item_index.astype(str)),
                                  "class": [str(c) for c in encoded.classes],
                                  "true_class": [str(c) for c in encoded.classes],
                                  "judgment": np.arange(encoded.n_judgments), **self._extra_coords()}
        raw = self._posterior_draws()
        # netCDF (``idata.to_netcdf``, ArviZ's file) refuses a '/' in a variable name, which a name built from a
        # column's holds (the debiasing model's ``<covariate>_effect`` of a column 'item_tokens/words'): '_' there
        netcdf = {name: name.replace("/", "_") for name in raw}
        if len(set(netcdf.values())) < len(netcdf):
            clash = sorted(name for name in raw if "/" in name)
            raise AccordError(f"the ArviZ export names {clash[0]!r} as {netcdf[clash[0]]!r} (netCDF allows no '/' in "
                              "a name), which another variable is already called: rename the column it comes from")
        raw = {netcdf[name]: value for name, value in raw.items()}
        # copies: several models hand out their own draws, cached log-likelihood and codes (views of torch tensors
        # or of fitted arrays), and ArviZ keeps the arrays it is given, so an in-place edit of the export (``idata.
        # posterior["utility"] -= ...``) rewrote the fitted model's posterior, and its predictions with it
        stats = getattr(self, "_sample_stats", None)
        idata = az.from_dict(posterior={name: np.array(value) for name, (value, _) in raw.items()},
                            log_likelihood={"y": self._pointwise_loglik(raw)},
                            observed_data={"y": np.array(encoded.labels)},
                            sample_stats=None if stats is None else {k: np.array(v) for k, v in stats.items()},
                            coords=coords,
                            dims={**{name: list(dims) for name, (_, dims) in raw.items()}, "y": ["judgment"]},
                            attrs={"method": self.method, "inference": self.inference})
        # ArviZ puts ``attrs`` on the InferenceData and observed_data only: every group says what made its draws
        # (one chain of a "vb" fit is independent draws of an approximation, not a Markov chain)
        for group in idata.groups():
            getattr(idata, group).attrs.update(method=self.method, inference=self.inference)
        return idata

    def _pointwise_loglik(self, raw: dict[str, tuple[Any, list[str]]]) -> np.ndarray:
        """A copy of :meth:`_loglik_draws` once it is what ``az.loo`` reads, ``[chains, draws, judgments]`` on the
        posterior's draws; else one error naming the model. A model of one's own without it failed in compare as a
        bare NotImplementedError or AttributeError, and one laid out otherwise ([draws, judgments], or per pair) as
        az.compare's "The number of observations should be the same across all models", naming no model."""
        name = type(self).__name__
        try:
            loglik = np.array(self._loglik_draws())
        except NotImplementedError:
            raise AccordError(f"{name}: no per-judgment log-likelihood (_loglik_draws), which the ArviZ export, "
                              "az.loo / az.waic and compare's PSIS-LOO need") from None
        n = self.encoded_.n_judgments
        # on the posterior's chains and draws (a model of one's own may export no posterior variable: its own then)
        chains_draws = np.shape(next(iter(raw.values()))[0])[:2] if raw else loglik.shape[:2]
        if loglik.shape != (*chains_draws, n):
            expected = f"({', '.join(map(str, chains_draws))}, {n})" if raw else f"(chains, draws, {n})"
            raise AccordError(f"{name}: its per-judgment log-likelihood (_loglik_draws) has shape {loglik.shape}, "
                              f"expected {expected}: chains and draws of the posterior, judgments of the fitted table")
        return loglik

    def predictive_loglik(self, judgments: pd.DataFrame) -> np.ndarray:
        """``log p(y_n | training judgments)`` of each judgment of a new table: its posterior-predictive density,
        with annotators and pairs unseen in training drawn from the fitted population."""
        raise NotImplementedError

    def _heldout_loglik(self, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        """Log-likelihood of each judgment of ``test`` under the model fitted on ``train`` (same settings)."""
        train = train if is_validated(train) else validate(train)
        model = self.clone()
        model._fit_table(train, shared_classes(train, test))
        return model.predictive_loglik(test)


def interval_columns(name: str, draws: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
    """``name``, ``name_lower``, ``name_upper``: the posterior mean and 90% interval of ``draws`` (first axis)."""
    return dict(zip((name, f"{name}_lower", f"{name}_upper"), mean_and_interval(draws)))


def confusion_columns(theta: torch.Tensor, pi: torch.Tensor, position_bias: bool) -> dict[str, np.ndarray]:
    """``reliability``, ``spam`` and ``position_bias`` with 90% intervals from confusions ``[S, W, K, L]`` and class
    priors ``[S, K]`` (the definitions are in the module docstring)."""
    k, n_workers = theta.shape[-2], theta.shape[1]
    columns: dict[str, np.ndarray] = {}

    def add(name: str, draws: torch.Tensor | None) -> None:
        values = mean_and_interval(draws) if draws is not None else (np.full(n_workers, np.nan),) * 3
        columns.update(zip((name, f"{name}_lower", f"{name}_upper"), values))

    # both are probabilities: clamped to [0, 1] against float32 rounding (a perfect rater's sum_k pi_k theta[k, k]
    # came out 1 + 1.2e-7 where the draw of pi summed to a hair above 1)
    add("reliability", (torch.diagonal(theta, dim1=-2, dim2=-1) * pi[:, None, :]).sum(-1).clamp_(0.0, 1.0))
    rows_i, rows_j = torch.triu_indices(k, k, offset=1, device=theta.device)
    tv = 0.5 * (theta[:, :, rows_i, :] - theta[:, :, rows_j, :]).abs().sum(-1).mean(-1)
    add("spam", (1.0 - tv).clamp_(0.0, 1.0) if k > 1 else None)
    if position_bias and k >= 2:
        says_a_given_a = theta[..., 0, 0] / (theta[..., 0, 0] + theta[..., 0, 1])
        says_a_given_b = theta[..., 1, 0] / (theta[..., 1, 0] + theta[..., 1, 1])
        add("position_bias", 0.5 * (says_a_given_a + says_a_given_b) - 0.5)
    else:
        add("position_bias", None)
    return columns


class PyroRaterModel(RaterModel):
    """A rater model fitted by the Pyro driver (:mod:`accord.models.pyro_fit`), with its settings.

    Parameters
    ----------
    learning_rate, patience, final_lr_fraction
        SVI: ClippedAdam at ``learning_rate``, decaying geometrically to ``final_lr_fraction`` of it at
        ``max_steps``; the convergence rule compares moving averages over ``patience`` steps.
    batch_size
        Pairs per SVI step (for data that does not fit in memory; models whose likelihood runs over judgments take
        the judgments of that many pairs, on average); ``None`` = full batch.
    rank, init_scale
        Rank of the low-rank guide (default: Pyro's, about the square root of the number of parameters) and the
        initial scale of the Gaussian guides.
    num_warmup, num_chains
        NUTS warm-up steps and chains (Gibbs: the same).
    """

    inference: str = "meanfield"
    learning_rate: float = 0.05
    patience: int = 20
    final_lr_fraction: float = 1.0
    batch_size: int | None = None
    rank: int | None = None
    init_scale: float = 0.05
    num_warmup: int = 300
    num_chains: int = 2

    def _keep_fit(self, fit: Any) -> dict[str, Any]:
        """Store what every Pyro fit reports (``svi_``, ``guide_``, ``n_divergences_``: the NUTS draws that diverged
        in any stage of the fit) and return its draws; note each SVI stage that stopped at its step limit before its
        loss settled (warned once, after ``_fit``: a model may fit more than once, as the debiasing model's two
        stages)."""
        self.svi_, self.guide_ = fit.svi, fit.guide
        unsettled = self.__dict__.setdefault("_unsettled", [])
        # a two-stage fit's MAP stage runs max_steps, its posterior stage posterior_steps (a MAP fit: one stage)
        stages = [(fit.svi_map, "max_steps"), (fit.svi, "posterior_steps" if fit.svi_map is not None else "max_steps")]
        for result, limit in stages[:1] if fit.svi is fit.svi_map else stages:
            if result is not None and not result.converged and limit not in unsettled:
                unsettled.append(limit)
        if fit.svi_map is not None:
            self.svi_map_ = fit.svi_map
        if fit.diverging is not None:
            # a two-stage fit (the debiasing model) exports draws of both stages side by side, draw by draw: a draw
            # diverged where either stage's did (stage 2's flags alone hid every divergence behind the pulls)
            earlier = self.__dict__.get("_sample_stats", {}).get("diverging")
            diverging = fit.diverging if earlier is None or earlier.shape != fit.diverging.shape \
                else earlier | fit.diverging
            self._sample_stats = {"diverging": diverging}
            self.n_divergences_ = int(diverging.sum())
        return fit.draws

    def _warn_if_unsettled(self) -> None:
        unsettled = self.__dict__.get("_unsettled", [])
        if unsettled:
            limits = " and ".join(f"{limit}={getattr(self, limit)}" for limit in unsettled)
            warnings.warn(f"{type(self).__name__}({self.inference}): SVI stopped at {limits} before its loss settled; "
                          "raise it (or learning_rate) and check the soft labels", ConvergenceWarning, stacklevel=4)
