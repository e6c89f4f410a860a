r"""Post-hoc calibration of a saved reward model: a temperature (and optionally a bias) on its pairwise log-odds,
fitted on held-out pairs against their soft labels, so no gold labels are needed.

The model's probability that ``chosen`` beats ``rejected`` is :math:`\sigma(d)` with ``d`` its pairwise logit
(:func:`accord.reward.evaluate.pair_logits`). Temperature scaling (Guo et al., "On calibration of modern neural
networks", ICML 2017; Platt scaling with a bias) replaces it with :math:`\sigma(z)`, :math:`z = d / T + b`, with
``T > 0`` (and ``b``) maximising the likelihood of the held-out pairs' labels.

**What a soft label is evidence of** (``objective="evidence"``, the default). A rater model's soft label is a
posterior, :math:`q_{ik} = P(\text{pair } i \text{ is } k \mid \text{its votes})` for
:math:`k \in \{c, r, t\}` (chosen better, rejected better, tie), calibrated as a forecast of the pair's label. It
is not the pair's probability: fitting :math:`\sigma(z)` to :math:`q` by cross-entropy finds
:math:`E[q \mid \text{pair}]`, which Bayes shrinkage pulls towards the prior for every pair the votes leave in
doubt, so the fitted model comes out under-confident about the preference itself. The posterior instead carries
the likelihood of the votes: with the rater model's prior :math:`\pi_k`,
:math:`P(\text{votes} \mid k) \propto q_{ik} / \pi_k`, and since the votes depend on the pair only through its
label, the probability of the pair's votes under the reward model is

.. math:: P(\text{votes}_i) \propto \sum_k P_\theta(k \mid i)\, \frac{q_{ik}}{\pi_k}
          = 2\sigma(z_i)\, q_{ic} + 2\sigma(-z_i)\, q_{ir} + q_{it},

taking the prior even between the two sides (:math:`\pi_c = \pi_r`, what a random order of the responses gives)
and the model's tie probability equal to the prior's. ``T`` and ``b`` maximise
:math:`\sum_i \log P(\text{votes}_i)`, the marginal likelihood of the held-out raters' votes (the "forward"
correction for noisy labels: Patrini et al., "Making deep neural networks robust to label noise: a loss correction
approach", CVPR 2017), so :math:`\sigma(z)` estimates the probability that the chosen response is better, not the
rater model's shrunken estimate of it. Hard labels (``q_c = 1``) give the hard cross-entropy; a soft label of 1/2
carries no evidence and leaves the fit unchanged.

``objective="soft"`` minimises the soft cross-entropy against the tie-split target instead,

.. math:: -\frac1n \sum_i \big[y_i \log \sigma(z_i) + (1 - y_i) \log \sigma(-z_i)\big],
          \qquad y_i = p_{\text{chosen}, i} + p_{\text{tie}, i} / 2,

for labels that are themselves the probability to reproduce (the share of a population of raters preferring
``chosen``), not a posterior of one true label.

Dividing by ``T`` keeps the ranking of responses; ``b`` shifts every pair towards the side shown as ``chosen`` and
fits only when that order carries information. The fitted values are written into the model's
``reward_model.json`` (``calibration``, with the ``max_length`` the log-odds were read at), and
:func:`~accord.reward.evaluate.evaluate` and :func:`~accord.reward.evaluate.score` apply them (warning when they
read at another ``max_length``).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from accord.datasets.errors import AccordError, SettingWarning, naming_file
from accord.datasets.io import atomic_path
from accord.reward.config import assigned

CALIBRATION_KEY = "calibration"


OBJECTIVES = ("evidence", "soft")
LR_HALF_95 = 1.9207294103470735  # half the 95% point of chi-squared(1): a likelihood-ratio interval's drop in log-lik


def fit_temperature(d: np.ndarray, p_chosen: np.ndarray, p_tie: np.ndarray | None = None, *, fit_bias: bool = False,
                    objective: str = "evidence") -> dict[str, Any]:
    """The temperature (and bias) of ``sigmoid(d / T + b)`` that maximises the likelihood of the soft labels
    ``(p_chosen, p_tie)``: the votes they summarise (``objective="evidence"``) or the soft cross-entropy against
    ``p_chosen + p_tie / 2`` (``"soft"``). The objective at ``T = 1, b = 0`` and at the fit (per pair):
    ``nll_before`` / ``nll_after``, the soft cross-entropy; for ``"evidence"`` ``nll_vs_prior_before`` /
    ``nll_vs_prior_after``, the votes' negative log-likelihood relative to the rater model's prior (their likelihood
    is known only up to that constant), which is negative where the model explains the votes better than the prior
    (a field named nll read as a positive NLL, and was -0.096). ``T`` stays within ``e^-7 .. e^7`` (``b`` within
    +-10): labels that never weigh against the model's side (``T -> 0``; the fit keeps the least confident ``T``
    their 95% likelihood-ratio interval holds, at most 1), that go against it (``T`` at its upper bound) or a bias at
    its bound warn; pairs that are all even (no evidence either way) are an error under
    ``"evidence"`` (under ``"soft"`` their targets of 1/2 pull ``T`` to its upper bound, with the warning). Labels
    that all favour one side as shown leave a bias nothing to stop at: ``fit_bias`` then keeps it at 0, fits ``T`` by
    the rule without one, and warns."""
    from scipy.optimize import brentq, minimize

    if objective not in OBJECTIVES:
        raise AccordError(f"calibration objective must be one of {', '.join(OBJECTIVES)}, got '{objective}'")
    d = np.asarray(d, dtype=np.float64)
    p_c = np.asarray(p_chosen, dtype=np.float64)
    p_t = np.zeros_like(p_c) if p_tie is None else np.asarray(p_tie, dtype=np.float64)
    if d.shape != p_c.shape or d.shape != p_t.shape or d.ndim != 1 or len(d) < 2:
        raise AccordError(f"calibration needs at least 2 pairs with one logit and one soft label each, got {d.shape} "
                          f"and {p_c.shape}")
    p_r = 1.0 - p_c - p_t
    finite = np.isfinite(d).all() and np.isfinite(p_c).all() and np.isfinite(p_t).all()
    if not finite or (p_c < 0).any() or (p_t < 0).any() or (p_r < -1e-9).any():
        raise AccordError("calibration: logits must be finite and soft labels in [0, 1] (p_chosen + p_tie <= 1)")
    if not np.any(d != 0):
        raise AccordError("calibration: every pairwise logit is 0 (the model does not separate any pair)")
    p_r = np.clip(p_r, 0.0, None)
    _refuse_no_evidence(p_c, p_t, objective, "calibration: ")

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        inv_t, b = math.exp(-theta[0]), (theta[1] if fit_bias else 0.0)
        z = d * inv_t + b
        if objective == "soft":
            y = p_c + 0.5 * p_t
            value = float(np.mean(np.logaddexp(0.0, z) - y * z))
            dz = np.exp(-np.logaddexp(0.0, -z)) - y  # d value / d z per pair
        else:
            # -log(2 sigmoid(z) q_c + 2 sigmoid(-z) q_r + q_t), in log space so hard labels stay exact
            with np.errstate(divide="ignore"):
                terms = np.stack([np.log(2.0 * p_c) - np.logaddexp(0.0, -z), np.log(2.0 * p_r) - np.logaddexp(0.0, z),
                                  np.log(p_t)])
            log_lik = np.logaddexp.reduce(terms, axis=0)
            value = float(-np.mean(log_lik))
            share = np.exp(terms - log_lik)  # each outcome's share of the pair's likelihood
            sig = np.exp(-np.logaddexp(0.0, -z))
            dz = -(share[0] * (1.0 - sig) - share[1] * sig)
        grad = [float(np.mean(dz * -d * inv_t))]
        if fit_bias:
            grad.append(float(np.mean(dz)))
        return value, np.array(grad)

    # labels that all favour one side as shown (the TRL layout's, every pair "chosen") are met by a bias alone: it runs
    # towards infinity and makes every pair sure at any temperature (was: T 0.025 and a bias of +0.32 written on 40
    # pairs of p_chosen 1 that the model ranks right, where without --bias the least confident T they hold is 0.43).
    # They cannot tell a bias from the layout, so it is kept at 0 and the temperature fitted by the rule without one
    sides = _label_sides(p_c, p_r, p_t, objective)
    pulled = sides[sides != 0]  # NaN included
    bias_held = fit_bias and bool(np.all(pulled == pulled[0]))
    fit_bias = fit_bias and not bias_held
    bounds = [(-7.0, 7.0)] + ([(-10.0, 10.0)] if fit_bias else [])  # T within e^-7..e^7
    start = np.zeros(2 if fit_bias else 1)
    options = {"gtol": 1e-10, "ftol": 1e-15}
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    # the evidence likelihood can have two maxima in T, an interior one and its finite limit as T -> 0 (below): a
    # descent from T = 1 could step past the interior one to the bound and stay there (T 0.0009 where the votes' best
    # is 0.24), so a second descent starts from the best of a grid over log T, kept where it ends clearly better
    from_grid = start.copy()
    from_grid[0] = min(np.linspace(*bounds[0], 29), key=lambda log_t: loss(np.r_[log_t, start[1:]])[0])
    second = minimize(loss, from_grid, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    if second.fun < result.fun - 1e-9 * max(1.0, abs(result.fun)):
        result = second
    theta, value = result.x.copy(), float(result.fun)
    mle_temperature = math.exp(float(theta[0]))
    # with a bias, labels on both sides that a threshold on d splits leave T running to 0 as they do without one,
    # taking the bias with it (was: a model that orders every held-out pair as its hard label says got T ~ 0.03 and no
    # word, or a warning that the labels favour one side)
    separated = _separated(d, sides, fit_bias)
    z = d / mle_temperature + (float(theta[1]) if fit_bias else 0.0)
    against = 0 if separated else int(np.sum(np.sign(z) * np.nan_to_num(sides) < 0))

    def profile(log_t: float) -> tuple[float, np.ndarray]:
        """The objective at ``T = e^log_t``, the bias (if any) at its best there."""
        if not fit_bias:
            return loss(np.array([log_t]))[0], np.array([log_t])
        inner = minimize(lambda b: (lambda v, g: (v, g[1:]))(*loss(np.array([log_t, b[0]]))), theta[1:], jac=True,
                         method="L-BFGS-B", bounds=bounds[1:], options={"gtol": 1e-10, "ftol": 1e-15})
        return float(inner.fun), np.array([log_t, float(inner.x[0])])

    # Soft labels keep the evidence likelihood bounded as T -> 0: each pair tends to log(2 q_side + q_t), where a hard
    # label against the model sends it to -inf. So its maximum can lie at T -> 0, a sure model, on labels of which
    # some go against the model but weigh too little to bound its confidence (was written as the fit: T 0.0009,
    # held-out ECE 0.131 -> 0.367). Then the 95% likelihood-ratio interval of T runs down to 0: the votes bound the
    # confidence from below only, and the fit keeps the least confident temperature the interval holds, at most 1
    # (the model as trained, when they do not reject it).
    open_below = False
    if objective == "evidence" and against and not separated:
        def gap(log_t: float) -> float:
            """How far ``T = e^log_t`` falls outside the interval (<= 0: the votes do not reject it)."""
            return len(d) * (profile(log_t)[0] - value) - LR_HALF_95

        open_below = gap(bounds[0][0]) <= 0.0
        if open_below:
            log_t = 0.0 if gap(0.0) <= 0.0 else brentq(gap, float(theta[0]), 0.0, xtol=1e-10)
            value, theta = profile(log_t)
    elif separated:
        # labels that never weigh against the model (all one class and all ranked right, say) have no best T: the
        # likelihood rises to its supremum, every pair sure of its label's side, as T -> 0, and the optimiser's stop
        # was written as the fit (T 0.0009 on 40 held-out pairs of p_chosen 1). They bound the confidence from below
        # only, so the same rule: the least confident T within the likelihood-ratio drop of that supremum, at most 1
        supremum = _sure_limit(np.sign(d) if not fit_bias else sides, p_c, p_r, p_t, objective)

        def drop(log_t: float) -> float:
            return len(d) * (profile(log_t)[0] - supremum) - LR_HALF_95

        # a bounded bias may not follow a threshold as T -> 0, so the interval's top is looked for from above
        grid = np.linspace(bounds[0][0], 0.0, 29)
        held = [i for i, log_t in enumerate(grid) if drop(log_t) <= 0.0]
        open_below = bool(held)
        if open_below:
            top = held[-1]
            log_t = 0.0 if top == len(grid) - 1 else brentq(drop, grid[top], grid[top + 1], xtol=1e-10)
            value, theta = profile(log_t)
    temperature = math.exp(float(theta[0]))
    if result.x[0] <= bounds[0][0] + 1.0 or separated or open_below:
        # the likelihood keeps rising as T -> 0: the labels never weigh against the model's side (separation); with
        # hard labels its gradient vanishes like exp(-|d| / T) and the optimiser stops well above the bound
        # soft labels weigh at most 2 q + q_t against a sure model, so weak ones that mostly agree with it run T to
        # 0 as well; they were said to "never weigh against the model's ranking" when some of them did
        why = ("labels never weigh against the model's ranking" if not against else
               f"labels' evidence is too weak: {against} of the {len(d)} go against the model's ranking, yet its "
               "likelihood keeps rising as it grows surer")
        as_trained = " (the model as trained)" if temperature == 1.0 else ""
        kept = (f"; the calibration keeps the least confident temperature their likelihood does not reject (95% "
                f"likelihood-ratio interval), T = {temperature:.3g}{as_trained}" if open_below else "")
        hint = _what_bounds_it(p_c, p_t, objective)
        warnings.warn(SettingWarning("objective", lambda name: (
            f"calibration: the temperature ran towards 0 (stopped at {mle_temperature:.1e}); the {len(d)} held-out "
            f"{why}, so they cannot bound its confidence{kept} ({hint(name)})")), stacklevel=2)
    elif result.x[0] >= bounds[0][1] - 1.0:
        warnings.warn(f"calibration: the temperature ran to its upper bound ({temperature:.1e}): the {len(d)} "
                      "held-out labels do not follow the model's ranking, so every calibrated probability is about "
                      "1/2", stacklevel=2)
    if bias_held:
        side = "chosen" if pulled[0] > 0 else "rejected"
        warnings.warn(SettingWarning("fit_bias", lambda name: (
            f"calibration: the {len(pulled)} held-out labels that favour a side all favour the one shown as {side}, "
            f"so they cannot bound a bias (it would run towards {'+' if side == 'chosen' else '-'}infinity, every "
            f"pair sure of {side} whatever the model says): the bias is kept at 0 and the temperature fitted alone, "
            f"{'as without ' + name if name.startswith('--') else 'as with ' + name + '=False'}")), stacklevel=2)
    elif fit_bias and abs(result.x[1]) >= bounds[1][1] - 1e-6 and not separated:
        warnings.warn(SettingWarning("fit_bias", lambda name: (
            f"calibration: the bias ran to its bound ({result.x[1]:+.0f}): the held-out labels favour one side as "
            "shown (chosen or rejected) whatever the model says, so they cannot bound the bias (fit without a bias: "
            f"{'leave out ' + name if name.startswith('--') else name + '=False'})")), stacklevel=2)
    nll = "nll" if objective == "soft" else "nll_vs_prior"
    return {"temperature": temperature, "bias": float(theta[1]) if fit_bias else 0.0, "objective": objective,
            f"{nll}_before": loss(np.zeros_like(start))[0], f"{nll}_after": value, "n_pairs": len(d)}


def _sure_limit(side: np.ndarray, p_c: np.ndarray, p_r: np.ndarray, p_t: np.ndarray, objective: str) -> float:
    """The objective (per pair) in the limit where each pair's calibrated log-odds run to ``+inf`` (``side`` 1),
    ``-inf`` (-1) or stay 0 (0): its supremum on labels that never weigh against those sides (:func:`_separated`),
    where every label a side is put on is hard under ``"soft"``."""
    if objective == "soft":
        return float(np.mean(np.where(side == 0, math.log(2.0), 0.0)))
    # (a pair put on a side its label favours, so its likelihood there is above 0)
    return float(-np.mean(np.log(np.where(side > 0, 2.0 * p_c + p_t, np.where(side < 0, 2.0 * p_r + p_t,
                                                                                 p_c + p_r + p_t)))))


def _refuse_no_evidence(p_c: np.ndarray, p_t: np.ndarray, objective: str, where: str) -> None:
    """One error, led by ``where``, for held-out labels that carry no evidence about which side is better (every
    one a tie or even): under the evidence objective every pair's likelihood is then the same at every temperature,
    and the "fit" would write T = 1 as if measured."""
    if objective == "evidence" and np.all(np.abs(2.0 * p_c + p_t - 1.0) < 1e-9):  # p_chosen == p_rejected
        raise AccordError(f"{where}none of the {len(p_c)} held-out pairs carries evidence about which side is "
                          "better (every soft label is a tie or even, p_chosen == p_rejected), so they cannot fit a "
                          "temperature")


def _what_bounds_it(p_c: np.ndarray, p_t: np.ndarray, objective: str) -> Callable[[str], str]:
    """What would bound the temperature's fall towards 0, for the labels at hand (given the objective's flag or
    keyword). The soft objective helps only where a target is not 0 or 1: it pulls that pair's probability to it. On
    hard labels it is the same cross-entropy as the evidence (was suggested for them all the same), so only pairs the
    model ranks wrong, or labels that say how sure they are, bound it."""
    hard = bool(np.all(np.isin(p_c + 0.5 * p_t, (0.0, 1.0))))
    if hard:
        return lambda name: ("more held-out pairs, or soft labels in place of these 0/1 ones, such as a rater "
                             f"model's from accord aggregate; {assigned(name, 'soft')} reads 0/1 labels as the "
                             "evidence objective does")
    if objective == "soft":
        return lambda name: "more held-out pairs"
    return lambda name: (f"more held-out pairs, or {assigned(name, 'soft')} if the labels are themselves the "
                         "probability to reproduce, such as a population's vote shares")


def _label_sides(p_c: np.ndarray, p_r: np.ndarray, p_t: np.ndarray, objective: str) -> np.ndarray:
    """The side each pair's label pulls its calibrated log-odds towards without limit: ``1`` (chosen), ``-1``
    (rejected), ``0`` (no pull: an even label) or NaN (a label that bounds it: the soft target of a label that is
    not hard). The evidence of a pair favours the side of its larger probability."""
    if objective == "soft":
        y = p_c + 0.5 * p_t
        return np.where(y >= 1.0, 1.0, np.where(y <= 0.0, -1.0, np.nan))
    return np.sign(p_c - p_r)


def _separated(d: np.ndarray, sides: np.ndarray, fit_bias: bool) -> bool:
    """Whether no pair weighs against the model's side (:func:`_label_sides`), so that the likelihood rises all the
    way to ``T -> 0``. Without a bias the model's side is the sign of ``d`` (a pair of ``d = 0`` stays at 1/2 whatever
    ``T``); with one, any threshold on ``d`` that splits the labels' sides."""
    if not fit_bias:
        lean = (np.sign(d) * sides)[d != 0]
        return bool(np.all(lean >= 0.0) and np.any(lean > 0.0))  # NaN compares False: not separated
    if np.isnan(sides).any():
        return False
    chosen, rejected = d[sides > 0], d[sides < 0]
    return bool(len(chosen) and len(rejected) and rejected.max() < chosen.min())


def apply_calibration(d: np.ndarray, meta: dict[str, Any], max_length: int | None = None) -> np.ndarray:
    """``d / T + b`` when the model's metadata has a calibration, else ``d``. ``max_length``: the tokens per
    sequence ``d`` was read at; one other than the calibration's (recorded since it was) warns once."""
    calibration = meta.get(CALIBRATION_KEY)
    if not calibration:
        return np.asarray(d, dtype=np.float64)
    fitted_at = calibration.get("max_length")
    if max_length is not None and isinstance(fitted_at, int) and fitted_at != max_length:
        # log-odds of responses cut elsewhere are other log-odds: the temperature was applied to them unsaid
        warnings.warn(SettingWarning("max_length", lambda name: (
            f"the calibration in reward_model.json was fitted to log-odds read at {assigned(name, fitted_at)}; "
            f"these are read at {assigned(name, max_length)}, so its temperature may not fit them (read them at "
            f"{assigned(name, fitted_at)}, or calibrate again with {assigned(name, max_length)})")), stacklevel=2)
    # a hand-edited or damaged reward_model.json: a negative temperature turned every ranking around, 0 gave inf
    # and NaN probabilities, a missing one a KeyError
    temperature, bias = calibration.get("temperature"), calibration.get("bias", 0.0)
    for name, value, positive in (("temperature", temperature, True), ("bias", bias, False)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
                positive and value <= 0):
            raise AccordError(f"reward_model.json: calibration {name} must be a finite number"
                              f"{' > 0' if positive else ''}, not {value!r} (run accord calibrate again)")
    return np.asarray(d, dtype=np.float64) / float(temperature) + float(bias)


def calibrate(model_dir: str | Path, data: Any, *, fit_bias: bool = False, objective: str = "evidence",
              batch_size: int = 32, max_length: int | None = None, device: Any = None,
              progress: bool = False) -> dict[str, Any]:
    """Fit the temperature (and bias) of the saved model in ``model_dir`` on the held-out pairs ``data`` (a cleaned
    dataset or any layout :func:`~accord.reward.data.load_pairs` reads; ``objective``: see the module) and write it
    into its metadata. Pairs the model was trained on would make it look over-confident: use a slice held out from
    training.

    Returns :func:`fit_temperature`'s result with the expected calibration errors on these pairs before and after
    (``ece_before`` / ``ece_after`` against their hard labels, as ``accord evaluate`` reports ``ece``, left out when
    every pair is a tie; ``soft_ece_before`` / ``soft_ece_after`` against their soft labels): the objective's NLL
    alone did not say whether the probabilities came closer to the labels."""
    from accord.reward.data import load_pairs
    from accord.reward.evaluate import (_encoder, _source, _warn_cut, load_model, pair_logits, pairwise_metrics,
                                        predict_pairs)
    from accord.reward.model import META_FILE, RewardModel

    meta = RewardModel.read_meta(model_dir)  # fails with one line before the weights load
    task = meta.get("task", "pairwise")
    if task != "pairwise":  # its scores are not read through a pairwise logit, so nothing would apply the fit
        raise AccordError(f"folder {model_dir}: a reward model of task '{task}'; calibration fits the temperature of "
                          "a pairwise model's log-odds, which evaluate and score of this task do not read")
    frame = load_pairs(data, held_out=True)  # a wrong file fails before the weights load, too
    where = "" if hasattr(data, "columns") else f"file {data}: "
    if len(frame) < 2:  # was found after the model had scored them, as "got (1,) and (1,)", naming no file
        raise AccordError(f"{where}calibration fits a temperature to at least 2 held-out pairs, got {len(frame)}")
    p_chosen, p_tie = frame["p_chosen"].to_numpy(dtype=float), frame["p_tie"].to_numpy(dtype=float)
    # labels without evidence were found after the model had scored every pair, in a line naming no file
    _refuse_no_evidence(p_chosen, p_tie, objective, f"{where}calibration: ")
    model, tokenizer = load_model(model_dir, device)
    encoder = _encoder(model, tokenizer, max_length)
    with naming_file(_source(data)):  # (a chat template's refusal named the row, not the file)
        pairs = encoder.encode_pairs(frame)
    # as evaluate and score say it (was: a temperature saved with the model, fitted on cut pairs without a word)
    _warn_cut(pairs.truncation["truncated_responses"], pairs.truncation["sequences"], "responses of the pairs",
              encoder.max_length, "calibrate")
    pred = predict_pairs(model, pairs, pad_token_id=tokenizer.pad_token_id, batch_size=batch_size,
                         progress=progress, desc="calibrating")
    d = pair_logits(pred)
    fitted = fit_temperature(d, p_chosen, p_tie, fit_bias=fit_bias, objective=objective)
    for when, logits in (("before", d), ("after", d / fitted["temperature"] + fitted["bias"])):
        measured = pairwise_metrics(logits, p_chosen, p_tie)
        fitted.update({f"{name}_{when}": measured[name] for name in ("ece", "soft_ece") if name in measured})
    # the length the log-odds were read at: evaluate and score at another warn (apply_calibration)
    meta[CALIBRATION_KEY] = {"temperature": fitted["temperature"], "bias": fitted["bias"], "objective": objective,
                             "n_pairs": fitted["n_pairs"], "source": str(data) if not hasattr(data, "columns")
                             else "a table", "max_length": encoder.max_length}
    with atomic_path(Path(model_dir) / META_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, default=str))
    return fitted
