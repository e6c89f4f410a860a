r"""Post-hoc calibration of a saved reward model: a temperature (and optionally a bias) on its pairwise log-odds,
fitted on held-out pairs against their soft labels, so no gold labels are needed.

The model's probability that ``chosen`` beats ``rejected`` is :math:`\sigma(d)` with ``d`` its pairwise logit
(:func:`accord.reward.evaluate.pair_logits`). Temperature scaling (Guo et al., "On calibration of modern neural
networks", ICML 2017; Platt scaling with a bias) replaces it with :math:`\sigma(d / T + b)`, with ``T > 0`` (and
``b``) minimising the soft cross-entropy on held-out pairs,

.. math:: -\frac1n \sum_i \big[y_i \log \sigma(d_i/T + b) + (1 - y_i) \log \sigma(-d_i/T - b)\big],
          \qquad y_i = p_{\text{chosen}, i} + p_{\text{tie}, i} / 2,

the same target the pairwise loss trains on. Dividing by ``T`` keeps the ranking of responses; ``b`` shifts every
pair towards the side shown as ``chosen`` and fits only when that order carries information. The fitted values are
written into the model's ``reward_model.json`` (``calibration``), and :func:`~accord.reward.evaluate.evaluate` and
:func:`~accord.reward.evaluate.score` apply them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from accord.datasets.errors import AccordError
from accord.datasets.io import atomic_path

CALIBRATION_KEY = "calibration"


def fit_temperature(d: np.ndarray, y: np.ndarray, *, fit_bias: bool = False) -> dict[str, float]:
    """The temperature (and bias) minimising the soft cross-entropy of ``sigmoid(d / T + b)`` against ``y``."""
    from scipy.optimize import minimize

    d = np.asarray(d, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if d.shape != y.shape or d.ndim != 1 or len(d) < 2:
        raise AccordError(f"calibration needs at least 2 pairs with one logit and one soft label each, got {d.shape} "
                          f"and {y.shape}")
    if not (np.isfinite(d).all() and np.isfinite(y).all()) or (y < 0).any() or (y > 1).any():
        raise AccordError("calibration: logits must be finite and soft labels in [0, 1]")
    if not np.any(d != 0):
        raise AccordError("calibration: every pairwise logit is 0 (the model does not separate any pair)")

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        inv_t, b = math.exp(-theta[0]), (theta[1] if fit_bias else 0.0)
        z = d * inv_t + b
        # soft cross-entropy and its gradient in (log T, b)
        value = float(np.mean(np.logaddexp(0.0, z) - y * z))
        residual = 1.0 / (1.0 + np.exp(-z)) - y
        grad = [float(np.mean(residual * -d * inv_t))]
        if fit_bias:
            grad.append(float(np.mean(residual)))
        return value, np.array(grad)

    start = np.zeros(2 if fit_bias else 1)
    bounds = [(-7.0, 7.0)] + ([(-10.0, 10.0)] if fit_bias else [])  # T within e^-7..e^7
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    temperature = math.exp(float(result.x[0]))
    return {"temperature": temperature, "bias": float(result.x[1]) if fit_bias else 0.0,
            "soft_nll_before": loss(np.zeros_like(start))[0], "soft_nll_after": float(result.fun), "n_pairs": len(d)}


def apply_calibration(d: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """``d / T + b`` when the model's metadata has a calibration, else ``d``."""
    calibration = meta.get(CALIBRATION_KEY)
    if not calibration:
        return np.asarray(d, dtype=np.float64)
    return np.asarray(d, dtype=np.float64) / float(calibration["temperature"]) + float(calibration.get("bias", 0.0))


def calibrate(model_dir: str | Path, data: Any, *, fit_bias: bool = False, batch_size: int = 32,
              max_length: int | None = None, device: Any = None, progress: bool = False) -> dict[str, float]:
    """Fit the temperature (and bias) of the saved model in ``model_dir`` on the held-out pairs ``data`` (a cleaned
    dataset or any layout :func:`~accord.reward.data.load_pairs` reads) and write it into its metadata. Pairs the
    model was trained on would make it look over-confident: use a slice held out from training."""
    from accord.reward.data import load_pairs
    from accord.reward.evaluate import _encoder, load_model, pair_logits, predict_pairs
    from accord.reward.model import META_FILE, RewardModel

    meta = RewardModel.read_meta(model_dir)  # fails with one line before the weights load
    model, tokenizer = load_model(model_dir, device)
    frame = load_pairs(data)
    pairs = _encoder(model, tokenizer, max_length).encode_pairs(frame)
    pred = predict_pairs(model, pairs, pad_token_id=tokenizer.pad_token_id, batch_size=batch_size,
                         progress=progress, desc="calibrating")
    y = frame["p_chosen"].to_numpy(dtype=float) + 0.5 * frame["p_tie"].to_numpy(dtype=float)
    fitted = fit_temperature(pair_logits(pred), y, fit_bias=fit_bias)
    meta[CALIBRATION_KEY] = {"temperature": fitted["temperature"], "bias": fitted["bias"],
                             "n_pairs": fitted["n_pairs"], "source": str(data) if not hasattr(data, "columns")
                             else "a table"}
    with atomic_path(Path(model_dir) / META_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, default=str))
    return fitted
