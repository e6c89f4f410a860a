"""What every rater model shares: scikit-learn style settings and fitted attributes, soft labels from posterior
draws, and the export to ArviZ.

A subclass implements ``_fit(encoded)``, which must set

- ``self._item_prob_draws``: array ``[draws, n_items, n_classes]``, the posterior probability of each item's true
  class under each posterior draw of the model's parameters (one draw for a point estimate);
- ``self._posterior``: dict ``name -> (array [chains, draws, *shape], dims)`` of posterior draws for ArviZ;
- ``self._loglik_draws``: array ``[chains, draws, n_judgments]``, each judgment's log-likelihood with the item's
  true class marginalised, under each draw (the ``log_likelihood`` group behind ``az.loo`` / ``az.waic``);
- ``self.annotators_``: a DataFrame indexed by annotator.

and ``_heldout_loglik(train, test)`` for :func:`accord.models.compare`.

Optional, backwards-compatible alternatives (a subclass may use them instead, to save memory on large data):

- ``self._item_summary``: an object with ``mean [n_items, n_classes]``, ``sd``, ``lower``, ``upper`` (``[n_items]``,
  of the most likely class's probability) instead of ``_item_prob_draws``;
- methods ``_compute_posterior()`` / ``_compute_loglik_draws()`` returning what ``_posterior`` / ``_loglik_draws``
  would hold, called lazily by :meth:`RaterModel.to_arviz` when those attributes are not set;
- ``self._sample_stats`` (dict ``name -> array [chains, draws]``, e.g. NUTS ``diverging``) and
  ``_extra_coords()`` (further named coordinates for ArviZ).

:meth:`RaterModel.clone` rebuilds an unfitted copy from the constructor's arguments (scikit-learn's convention:
every constructor argument is stored under its own name), and :meth:`RaterModel.fit_encoded` fits on an
already-encoded table (held-out evaluation uses it to keep the full class set on a training fold).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd
import pyro
import torch

from accord.datasets import AccordError, Encoded, SoftLabels, encode

INFERENCE_METHODS: tuple[str, ...] = ("vb", "gibbs", "map", "meanfield", "lowrank", "nuts")
_FITTED_PRIVATE: tuple[str, ...] = (
    "_item_prob_draws", "_item_summary", "_posterior", "_loglik_draws", "_sample_stats",
)


class RaterModel(ABC):
    """Base class of accord's Bayesian annotator models.

    Parameters (shared by every model; each subclass documents its own extras and which ``inference`` it supports)
    ----------
    inference
        ``"vb"`` closed-form variational Bayes where the model is conjugate, ``"gibbs"`` blocked Gibbs sampling where
        it is conjugate (exact posterior draws), ``"map"`` (SVI with AutoDelta),
        ``"meanfield"`` (SVI with AutoNormal), ``"lowrank"`` (SVI with AutoLowRankMultivariateNormal) or ``"nuts"``.
    max_steps, learning_rate, tol, patience
        SVI settings: at most ``max_steps`` steps of ClippedAdam at ``learning_rate``; stop when the moving-average
        loss changes by less than ``tol`` (relative) over ``patience`` steps.
    batch_size
        Subsample this many pairs per SVI step (for data that does not fit in memory); ``None`` = full batch.
    num_samples
        Posterior draws kept for soft-label uncertainty and ArviZ (``num_warmup`` more for NUTS).
    seed
        Seeds torch, numpy and Pyro: the same seed on the same machine gives identical results.
    device
        ``"cpu"``, ``"cuda"``: the same code runs on a GPU.
    progress
        Show a progress bar.
    """

    method: ClassVar[str] = "rater-model"
    supported_inference: ClassVar[tuple[str, ...]] = INFERENCE_METHODS

    def __init__(
        self,
        *,
        inference: str = "meanfield",
        max_steps: int = 2000,
        learning_rate: float = 0.05,
        tol: float = 1e-4,
        patience: int = 20,
        batch_size: int | None = None,
        num_samples: int = 200,
        num_warmup: int = 300,
        num_chains: int = 1,
        seed: int = 0,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        self.inference = inference
        self.max_steps = max_steps
        self.learning_rate = learning_rate
        self.tol = tol
        self.patience = patience
        self.batch_size = batch_size
        self.num_samples = num_samples
        self.num_warmup = num_warmup
        self.num_chains = num_chains
        self.seed = seed
        self.device = device
        self.progress = progress

    # -- fitting ------------------------------------------------------------------------------------------

    def fit(self, judgments: pd.DataFrame) -> "RaterModel":
        """Learn annotator parameters and each pair's posterior from a judgments table."""
        if self.inference not in self.supported_inference:
            raise AccordError(
                f"{type(self).__name__} supports inference in {self.supported_inference}, not '{self.inference}'"
            )
        return self.fit_encoded(encode(judgments))

    def fit_encoded(self, encoded: Encoded) -> "RaterModel":
        """Fit on an already-encoded judgments table (see :func:`accord.models._data.encode_with_classes`)."""
        if self.inference not in self.supported_inference:
            raise AccordError(
                f"{type(self).__name__} supports inference in {self.supported_inference}, not '{self.inference}'"
            )
        for name in _FITTED_PRIVATE:
            self.__dict__.pop(name, None)
        self.encoded_ = encoded
        self._seed_everything()
        pyro.clear_param_store()
        self._fit(self.encoded_)
        self.soft_labels_ = self._soft_labels()
        return self

    # -- scikit-learn conventions ---------------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments, read back from the attributes of the same names."""
        params: dict[str, Any] = {}
        for cls in type(self).__mro__:
            init = cls.__dict__.get("__init__")
            if init is None:
                continue
            for name, parameter in inspect.signature(init).parameters.items():
                if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                    continue
                if name not in params and hasattr(self, name):
                    params[name] = getattr(self, name)
            if not any(
                p.kind == p.VAR_KEYWORD for p in inspect.signature(init).parameters.values()
            ):
                break
        return params

    def set_params(self, **params: Any) -> "RaterModel":
        for name, value in params.items():
            if name not in self.get_params():
                raise AccordError(f"{type(self).__name__} has no setting '{name}'")
            setattr(self, name, value)
        return self

    def clone(self, **overrides: Any) -> "RaterModel":
        """An unfitted copy with the same settings (and ``overrides``)."""
        params = self.get_params()
        params.update(overrides)
        return type(self)(**params)

    def fit_predict(self, judgments: pd.DataFrame) -> pd.Series:
        """Fit and return the most likely label of each pair."""
        return self.fit(judgments).soft_labels_.hard()

    def fit_predict_proba(self, judgments: pd.DataFrame) -> pd.DataFrame:
        """Fit and return the posterior class probabilities of each pair."""
        return self.fit(judgments).soft_labels_.probs

    @abstractmethod
    def _fit(self, encoded: Encoded) -> None: ...

    @abstractmethod
    def _heldout_loglik(self, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        """Log-likelihood of each judgment of ``test`` under the model fitted on ``train`` (same settings)."""

    def _seed_everything(self) -> None:
        pyro.set_rng_seed(self.seed)  # seeds torch, numpy and python's random

    @property
    def _torch_device(self) -> torch.device:
        return torch.device(self.device)

    # -- results ------------------------------------------------------------------------------------------

    def _soft_labels(self) -> SoftLabels:
        summary = getattr(self, "_item_summary", None)
        if summary is not None:
            return self._soft_labels_from_summary(summary)
        draws = np.asarray(self._item_prob_draws, dtype=float)
        encoded = self.encoded_
        mean = draws.mean(axis=0)
        mean = mean / mean.sum(axis=1, keepdims=True)
        top = mean.argmax(axis=1)
        top_draws = draws[:, np.arange(encoded.n_items), top]
        index = encoded.item_index
        if draws.shape[0] > 1:
            sd = top_draws.std(axis=0, ddof=1)
            interval = pd.DataFrame(
                {"lower": np.quantile(top_draws, 0.05, axis=0), "upper": np.quantile(top_draws, 0.95, axis=0)},
                index=index,
            )
        else:
            sd = np.full(encoded.n_items, np.nan)
            interval = None
        counts = np.bincount(encoded.items, minlength=encoded.n_items)
        return SoftLabels(
            probs=pd.DataFrame(mean, index=index, columns=list(encoded.classes)),
            uncertainty=pd.Series(sd, index=index, name="uncertainty"),
            n_judgments=pd.Series(counts, index=index, name="n_judgments"),
            method=self.method,
            interval=interval,
        )

    def _soft_labels_from_summary(self, summary: Any) -> SoftLabels:
        encoded = self.encoded_
        index = encoded.item_index
        mean = np.asarray(summary.mean, dtype=float)
        mean = mean / mean.sum(axis=1, keepdims=True)
        sd = np.asarray(summary.sd, dtype=float)
        interval = None
        if np.isfinite(sd).any():
            interval = pd.DataFrame({"lower": np.asarray(summary.lower), "upper": np.asarray(summary.upper)},
                                    index=index)
        counts = np.bincount(encoded.items, minlength=encoded.n_items)
        return SoftLabels(
            probs=pd.DataFrame(mean, index=index, columns=list(encoded.classes)),
            uncertainty=pd.Series(sd, index=index, name="uncertainty"),
            n_judgments=pd.Series(counts, index=index, name="n_judgments"),
            method=self.method,
            interval=interval,
        )

    def _extra_coords(self) -> dict[str, Any]:
        return {}

    def to_arviz(self) -> az.InferenceData:
        """Posterior draws and a per-judgment ``log_likelihood`` group (so ``az.loo``, ``az.waic``, ``az.compare``
        work), with named dimensions ``annotator``, ``pair_id``, ``class``, ``judgment``."""
        self._check_fitted()
        encoded = self.encoded_
        coords: dict[str, Any] = {
            "annotator": np.asarray(encoded.worker_index.astype(str)),
            "pair_id": np.asarray(encoded.item_index.astype(str)),
            "class": [str(c) for c in encoded.classes],
            "true_class": [str(c) for c in encoded.classes],
            "judgment": np.arange(encoded.n_judgments),
        }
        coords.update(self._extra_coords())
        raw = getattr(self, "_posterior", None)
        if raw is None:
            raw = self._compute_posterior()
        loglik = getattr(self, "_loglik_draws", None)
        if loglik is None:
            loglik = self._compute_loglik_draws()
        posterior = {name: np.asarray(value) for name, (value, _) in raw.items()}
        dims = {name: list(d) for name, (_, d) in raw.items()}
        dims["y"] = ["judgment"]
        sample_stats = getattr(self, "_sample_stats", None)
        return az.from_dict(
            posterior=posterior,
            log_likelihood={"y": np.asarray(loglik)},
            observed_data={"y": encoded.labels},
            sample_stats=sample_stats,
            coords=coords,
            dims=dims,
            attrs={"method": self.method, "inference": self.inference},
        )

    def _compute_posterior(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        raise AccordError(f"{type(self).__name__} sets no posterior draws")

    def _compute_loglik_draws(self) -> np.ndarray:
        raise AccordError(f"{type(self).__name__} sets no per-judgment log-likelihood")

    def _check_fitted(self) -> None:
        if not hasattr(self, "soft_labels_"):
            raise AccordError(f"{type(self).__name__} is not fitted yet: call fit(judgments) first")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(inference={self.inference!r}, seed={self.seed})"
