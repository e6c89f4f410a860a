r"""Synthetic multi-attribute ratings with known truth: responses of :func:`make_synthetic`, five attributes, raters
with attribute-specific leniency and noise.

Generative story
----------------
Indices: response :math:`r`, attribute :math:`a`, rater :math:`j`, rating :math:`n`.

1. **Responses.** The prompts, responses, texts and features of :func:`~accord.datasets.synthetic.make_synthetic`
   (same seed, same texts): ``n_facts`` :math:`f_r`, ``n_filler`` :math:`v_r`, ``tone`` :math:`o_r`.

2. **True attributes.** Each attribute is a known linear function of the centred features plus a response-specific
   residual (aspects of quality the features do not describe):

   .. math:: z_{ra} = w_{a,f}\,(f_r - 2) + w_{a,v}\,(v_r - 1) + w_{a,o}\,o_r + \epsilon\, e_{ra},
             \qquad e_{ra} \sim \mathcal N(0, 1)

   with the weights :data:`ATTRIBUTE_WEIGHTS` (helpfulness uses the generator's utility weights, so it orders pairs
   as the synthetic preferences do) and :math:`\epsilon` = ``residual_sd``. The attributes of one response are
   correlated through the features they share.

3. **Scale.** Attribute :math:`a`'s cut-points are :math:`\gamma_{ak} = \bar z_a + s_a\,\Phi^{-1}(k/L)`,
   :math:`k = 1..L-1`, for a scale of :math:`L` levels (``scale``, default 0..4), with :math:`\bar z_a, s_a` the
   mean and standard deviation of :math:`z_{\cdot a}`: a rater without bias or noise would use every level
   equally often.

4. **Raters.** Rater :math:`j` reads attribute :math:`a` with a threshold shift (leniency) :math:`b_{ja}` and
   noise :math:`\sigma_{ja}`, both in units of :math:`s_a`:

   .. math:: y_n = \#\{k : \gamma_{ak} < z_{ra} + b_{ja} + \sigma_{ja}\,\xi_n\}, \qquad \xi_n \sim \mathcal N(0,1)

   Every rater has a small shift :math:`b_{ja} \sim \mathcal N(0, (0.1 s_a)^2)` and noise
   :math:`\sigma_{ja} = \sigma_0 s_a\, e^{0.2 u_j + 0.2 u_{ja}}` (:math:`\sigma_0` = ``noise``, :math:`u` standard
   normal). A share ``biased_share`` of raters (exactly, rounded) is lenient or harsh (a fair coin) on a random
   non-empty subset of the attributes (each with probability 1/2): there :math:`b_{ja} = \pm s_a\,U` with
   :math:`U \sim \mathrm{Uniform}` (``bias_range``). A share ``noisy_share`` is noisy on a random non-empty subset:
   there :math:`\sigma_{ja}` is multiplied by ``noisy_factor``.

5. **Workload.** Each response is rated by ``raters_per_response`` distinct raters (an int or an inclusive range),
   drawn with probability proportional to a log-normal activity (``activity_skew``), each on every attribute;
   ``missing_rate`` leaves out each (rater, response, attribute) rating with that probability, except one rating
   of each (rater, response), chosen at random, which is always kept: the share left out is therefore about
   ``missing_rate (K - 1) / K`` with ``K`` attributes (0.24 of the ratings at 0.3 with five; none with one).

6. **Truth on the rating scale.** ``true_<attribute>`` is the rating the typical rater would give on average:
   the raters' mean shift :math:`\bar b_a` and geometric-mean noise :math:`\bar\sigma_a`,

   .. math:: t_{ra} = \mathrm{low}_a + \sum_k \Phi\big((z_{ra} + \bar b_a - \gamma_{ak}) / \bar\sigma_a\big).

   Without gold labels a shift common to every rater cannot be told from a shift of the responses, so the
   typical rater is the reference any method can recover (with lenient and harsh raters equally likely,
   :math:`\bar b_a` is near 0).

Everything is fully determined by ``seed``; responses and texts come from the base generator's own streams.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from accord.datasets.attributes import validate_attributes
from accord.datasets.errors import AccordError
from accord.datasets.synthetic import UTILITY_WEIGHTS, _is_real, check_int, check_real, make_synthetic

__all__ = ["ATTRIBUTE_WEIGHTS", "SyntheticAttributes", "make_synthetic_attributes"]

#: Weights of the centred features (``n_facts - 2``, ``n_filler - 1``, ``tone``) in each true attribute.
ATTRIBUTE_WEIGHTS: dict[str, dict[str, float]] = {
    "helpfulness": dict(UTILITY_WEIGHTS),
    "correctness": {"n_facts": 1.0, "n_filler": 0.0, "tone": 0.0},
    "coherence": {"n_facts": 0.0, "n_filler": -0.8, "tone": 0.6},
    "complexity": {"n_facts": 0.7, "n_filler": 0.2, "tone": 0.0},
    "verbosity": {"n_facts": 0.5, "n_filler": 0.8, "tone": 0.0},
}
_CENTRES: dict[str, float] = {"n_facts": 2.0, "n_filler": 1.0, "tone": 0.0}


@dataclass(frozen=True)
class SyntheticAttributes:
    """Multi-attribute ratings and the truth behind them (see the module docstring).

    Attributes
    ----------
    judgments
        Validated multi-attribute table of response items: ``response_id``, ``annotator``, ``attribute``,
        ``label``, ``scale_min``/``scale_max``, (with text) ``prompt``, ``response``, ``prompt_id`` and
        ``annotator_type`` (``"typical"``, ``"biased"``, ``"noisy"`` or ``"biased+noisy"``).
    truth
        ``[responses x attributes]``: the true attribute on the rating scale (step 6).
    latent
        ``[responses x attributes]``: the true latent attribute :math:`z`.
    responses
        The base generator's responses (features, ``utility``, ``text``) joined with ``true_<attribute>``.
    raters
        Per rater: ``type``, ``leniency_<attribute>`` and ``noise_<attribute>`` (:math:`b_{ja}`,
        :math:`\\sigma_{ja}` on the latent scale), ``biased_on`` / ``noisy_on`` (attribute names joined by
        ``","``), ``n_ratings``.
    cutpoints
        ``[attributes x (L-1)]`` cut-points :math:`\\gamma` on the latent scale.
    typical_noise, typical_shift
        Per attribute: :math:`\\bar\\sigma_a` and :math:`\\bar b_a`, the typical rater of ``truth``.
    pairs
        The base generator's pairs of responses to one prompt: ``pair_id``, ``prompt_id``, ``response_a_id``,
        ``response_b_id`` and per attribute the true latent gap ``gap_<attribute>`` (:math:`z_A - z_B`).
    attributes, scale, params
        The attribute names, the rating scale ``(low, high)`` and the call's arguments.
    """

    judgments: pd.DataFrame
    truth: pd.DataFrame
    latent: pd.DataFrame
    responses: pd.DataFrame
    raters: pd.DataFrame
    cutpoints: pd.DataFrame
    typical_noise: pd.Series
    typical_shift: pd.Series
    pairs: pd.DataFrame
    attributes: tuple[str, ...]
    scale: tuple[int, int]
    params: dict[str, Any] = field(default_factory=dict)


def make_synthetic_attributes(
    n_responses: int = 2000,
    n_raters: int = 60,
    raters_per_response: int | tuple[int, int] = (3, 5),
    *,
    attributes: Sequence[str] | Mapping[str, Mapping[str, float]] | None = None,
    scale: tuple[int, int] = (0, 4),
    residual_sd: float = 0.4,
    noise: float = 0.5,
    biased_share: float = 1 / 3,
    bias_range: tuple[float, float] = (0.6, 1.2),
    noisy_share: float = 0.1,
    noisy_factor: float = 2.5,
    missing_rate: float = 0.0,
    activity_skew: float = 0.5,
    n_responses_per_prompt: int = 2,
    with_text: bool = True,
    seed: int = 0,
) -> SyntheticAttributes:
    """Generate multi-attribute ratings of synthetic responses with known truth (see the module docstring).

    Parameters
    ----------
    n_responses
        Responses to rate (rounded up to a whole number of prompts).
    n_raters
        Number of raters.
    raters_per_response
        Raters per response: an int or an inclusive ``(low, high)`` range drawn per response.
    attributes
        Names from :data:`ATTRIBUTE_WEIGHTS` (default all five), or ``{name: {"n_facts": w, "n_filler": w,
        "tone": w}}`` for attributes of your own.
    scale
        The rating scale ``(low, high)``.
    residual_sd
        Sd of each attribute's response-specific residual (0: attributes are exact functions of the features).
    noise
        Typical rater noise, in units of each attribute's sd.
    biased_share, bias_range
        Share of raters lenient or harsh on some attributes, and the size of their shift (in attribute sds).
    noisy_share, noisy_factor
        Share of raters noisy on some attributes, and how much noisier.
    missing_rate
        Probability that a rating is left out, one rating per (rater, response) always kept (the share missing is
        about ``missing_rate (K - 1) / K`` with ``K`` attributes; see step 5 above).
    activity_skew
        Log-normal sigma of rater activity (0: equal workloads).
    n_responses_per_prompt
        Responses per prompt (as in the base generator; pairs are all pairs of one prompt's responses).
    with_text
        Add the prompt and response texts.
    seed
        Seed of every random draw.
    """
    params: dict[str, Any] = {k: v for k, v in locals().items()}
    from scipy.special import ndtr, ndtri  # deferred: scipy is slow to import

    weights = _attribute_weights(attributes)
    names = tuple(weights)
    low, high = _check(params, scale)
    per_prompt = n_responses_per_prompt * (n_responses_per_prompt - 1) // 2
    n_prompts = -(-n_responses // n_responses_per_prompt)
    base = make_synthetic(
        n_pairs=n_prompts * per_prompt, n_annotators=1, judgments_per_pair=1, annotator_mix={"reliable": 1.0},
        tie_rate=0.0, n_responses_per_prompt=n_responses_per_prompt, activity_skew=0.0, with_text=with_text,
        seed=seed,
    )
    responses = base.responses
    n = len(responses)
    rng_truth, rng_raters, rng_work, rng_rate = (np.random.default_rng(s) for s in
                                                 np.random.SeedSequence([seed, 7]).spawn(4))

    # -- true attributes and the scale ---------------------------------------------------------------------
    features = {k: responses[k].to_numpy(dtype=float) - c for k, c in _CENTRES.items()}
    latent = np.stack([sum(w.get(k, 0.0) * features[k] for k in _CENTRES) for w in weights.values()], axis=1)
    latent = latent + residual_sd * rng_truth.standard_normal(latent.shape)
    centre, spread = latent.mean(axis=0), latent.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    n_levels = high - low + 1
    cuts = centre[:, None] + spread[:, None] * ndtri(np.arange(1, n_levels) / n_levels)[None, :]  # [A, L-1]

    # -- raters ----------------------------------------------------------------------------------------------
    n_attr = len(names)
    biased = _exact_share(rng_raters, n_raters, biased_share)
    noisy = _exact_share(rng_raters, n_raters, noisy_share)
    biased_on = _nonempty_subsets(rng_raters, n_raters, n_attr) & biased[:, None]
    noisy_on = _nonempty_subsets(rng_raters, n_raters, n_attr) & noisy[:, None]
    direction = np.where(rng_raters.random(n_raters) < 0.5, -1.0, 1.0)
    size = rng_raters.uniform(*bias_range, (n_raters, n_attr))
    leniency = 0.1 * rng_raters.standard_normal((n_raters, n_attr))
    leniency = np.where(biased_on, direction[:, None] * size, leniency) * spread[None, :]
    log_noise = 0.2 * rng_raters.standard_normal((n_raters, 1)) + 0.2 * rng_raters.standard_normal((n_raters, n_attr))
    sigma = noise * spread[None, :] * np.exp(log_noise) * np.where(noisy_on, noisy_factor, 1.0)
    typical = np.exp(np.log(sigma).mean(axis=0))  # geometric mean over raters, per attribute
    # only the log enters the draw below: kept as a log, exp cannot overflow under a large skew
    log_activity = activity_skew * rng_raters.standard_normal(n_raters)

    # -- workload: distinct raters per response (Gumbel top-k = weighted sampling without replacement) ----------
    k_low, k_high = _range(raters_per_response)
    counts = rng_work.integers(k_low, k_high + 1, n) if k_high > k_low else np.full(n, k_low)
    keys = log_activity[None, :] - np.log(-np.log(rng_work.random((n, n_raters))))
    top = np.argsort(-keys, axis=1)[:, :k_high]
    take = np.arange(k_high)[None, :] < counts[:, None]
    rated_response = np.repeat(np.arange(n), counts)
    rater = top[take]
    # every (rating event, attribute); missing ratings are dropped but one per event is always kept
    event = np.repeat(np.arange(len(rater)), n_attr)
    attribute = np.tile(np.arange(n_attr), len(rater))
    keep = rng_work.random(len(event)) >= missing_rate
    kept_one = rng_work.integers(0, n_attr, len(rater))
    keep |= attribute == kept_one[event]
    event, attribute = event[keep], attribute[keep]
    r, j = rated_response[event], rater[event]

    # -- ratings ---------------------------------------------------------------------------------------------
    perceived = latent[r, attribute] + leniency[j, attribute] + sigma[j, attribute] * rng_rate.standard_normal(
        len(r))
    level = (perceived[:, None] > cuts[attribute]).sum(axis=1)
    typical_shift = leniency.mean(axis=0)
    truth = low + ndtr((latent[:, :, None] + typical_shift[None, :, None] - cuts[None, :, :])
                       / typical[None, :, None]).sum(axis=2)

    # -- tables ----------------------------------------------------------------------------------------------
    response_ids = responses.index.to_numpy()
    rater_names = [f"rater{i:0{len(str(n_raters - 1))}d}" for i in range(n_raters)]
    kind = np.select([biased & noisy, biased, noisy], ["biased+noisy", "biased", "noisy"], "typical")
    columns: dict[str, Any] = {
        "response_id": response_ids[r],
        "annotator": np.asarray(rater_names, dtype=object)[j],
        "attribute": np.asarray(names, dtype=object)[attribute],
        "label": (low + level).astype(np.int64),
        "scale_min": low,
        "scale_max": high,
        "prompt_id": responses["prompt_id"].to_numpy()[r],
    }
    if with_text:
        columns["prompt"] = responses["prompt"].to_numpy()[r]
        columns["response"] = responses["text"].to_numpy()[r]
    columns["annotator_type"] = kind[j]
    judgments = validate_attributes(pd.DataFrame(columns), item="response",
                                    scales={name: (low, high) for name in names})  # keeps the attributes' order

    index = pd.Index(response_ids, name="response_id")
    truth_frame = pd.DataFrame(truth, index=index, columns=list(names))
    latent_frame = pd.DataFrame(latent, index=index, columns=list(names))
    raters = pd.DataFrame({"type": kind}, index=pd.Index(rater_names, name="annotator"))
    for a, name in enumerate(names):
        raters[f"leniency_{name}"] = leniency[:, a]
        raters[f"noise_{name}"] = sigma[:, a]
    raters["biased_on"] = [",".join(np.asarray(names)[row]) for row in biased_on]
    raters["noisy_on"] = [",".join(np.asarray(names)[row]) for row in noisy_on]
    raters["n_ratings"] = np.bincount(j, minlength=n_raters)
    pairs = base.judgments.drop_duplicates("pair_id")[["pair_id", "response_a_id", "response_b_id"]]
    pairs = pairs.reset_index(drop=True)
    pairs.insert(1, "prompt_id", responses["prompt_id"].reindex(pairs["response_a_id"]).to_numpy())
    for name in names:
        pairs[f"gap_{name}"] = (latent_frame[name].reindex(pairs["response_a_id"]).to_numpy()
                                - latent_frame[name].reindex(pairs["response_b_id"]).to_numpy())
    return SyntheticAttributes(
        judgments=judgments,
        truth=truth_frame,
        latent=latent_frame,
        responses=responses.join(truth_frame.add_prefix("true_")),
        raters=raters,
        cutpoints=pd.DataFrame(cuts, index=pd.Index(names, name="attribute"),
                               columns=[f"{k - 1}|{k}" for k in range(low + 1, high + 1)]),
        typical_noise=pd.Series(typical, index=pd.Index(names, name="attribute"), name="typical_noise"),
        typical_shift=pd.Series(typical_shift, index=pd.Index(names, name="attribute"), name="typical_shift"),
        pairs=pairs,
        attributes=names,
        scale=(low, high),
        params=params,
    )


def _attribute_weights(attributes: Sequence[str] | Mapping[str, Mapping[str, float]] | None
                       ) -> dict[str, dict[str, float]]:
    if attributes is None:
        return {k: dict(v) for k, v in ATTRIBUTE_WEIGHTS.items()}
    if isinstance(attributes, str):  # read letter by letter, it was "must be a subset ..., got ['h', 'e', ...]"
        raise AccordError(f"attributes must be a list of names, e.g. attributes=[{attributes!r}]")
    # a name given twice was one attribute, silently (in a mapping: 2 and '2' both name the column '2')
    names = [str(name) for name in attributes]
    twice = [name for name in names if names.count(name) > 1]
    if twice:
        raise AccordError(f"attributes: {twice[0]!r} is named twice; name each attribute once")
    if isinstance(attributes, Mapping):
        out = {}
        for name, weights in attributes.items():
            unknown = [k for k in weights if k not in _CENTRES]
            if unknown:
                raise AccordError(f"attribute {name!r}: unknown feature {unknown[0]!r} (use {list(_CENTRES)})")
            if not all(_is_real(v) and math.isfinite(v) for v in weights.values()):
                # a NaN weight made every latent value, cut-point and rating of the attribute NaN / the lowest grade
                raise AccordError(f"attribute {name!r}: feature weights must be finite numbers, got {dict(weights)!r}")
            out[str(name)] = {k: float(v) for k, v in weights.items()}
        if not out:
            raise AccordError("attributes must name at least one attribute")
        return out
    names = list(attributes)
    unknown = [a for a in names if a not in ATTRIBUTE_WEIGHTS]
    if unknown or not names:
        raise AccordError(f"attributes must be a non-empty subset of {list(ATTRIBUTE_WEIGHTS)}, got {names}")
    return {a: dict(ATTRIBUTE_WEIGHTS[a]) for a in names}


def _range(value: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _check(params: dict[str, Any], scale: tuple[int, int]) -> tuple[int, int]:
    for name in ("n_responses", "n_raters"):
        check_int(name, params[name])
    # a count that is not an integer was truncated (raters_per_response=(2.7, 3) drew 2 or 3 raters, scale=(0.5, 4)
    # rated on 0..4) or named another setting in its error (n_responses_per_prompt=2.5: "n_pairs must be ...")
    check_int("n_responses_per_prompt", params["n_responses_per_prompt"], 2)
    check_int("seed", params["seed"], 0)
    per = params["raters_per_response"]
    bounds = tuple(per) if isinstance(per, (tuple, list)) and len(per) == 2 else (per, per)
    if not (all(not isinstance(v, bool) and isinstance(v, (int, np.integer)) for v in bounds)
            and 1 <= bounds[0] <= bounds[1] <= params["n_raters"]):
        raise AccordError(f"raters_per_response must be an integer or a (low, high) pair of integers in "
                          f"1..n_raters ({params['n_raters']}), got {per!r}")
    if not (isinstance(scale, (tuple, list)) and len(scale) == 2
            and all(not isinstance(v, bool) and isinstance(v, (int, np.integer)) for v in scale)
            and scale[0] < scale[1]):
        raise AccordError(f"scale must be (low, high), integers with low < high, got {scale!r}")
    for name in ("biased_share", "noisy_share", "missing_rate", "residual_sd", "noise", "activity_skew"):
        check_real(name, params[name])
    for name in ("biased_share", "noisy_share"):
        if not 0.0 <= float(params[name]) <= 1.0:
            raise AccordError(f"{name} must be in [0, 1], got {params[name]!r}")
    if not 0.0 <= float(params["missing_rate"]) < 1.0:
        raise AccordError(f"missing_rate must be in [0, 1), got {params['missing_rate']!r}")
    for name in ("residual_sd", "noise", "activity_skew"):
        if not (math.isfinite(params[name]) and params[name] >= 0):
            raise AccordError(f"{name} must be a finite number >= 0, got {params[name]!r}")
    if params["noise"] <= 0:
        raise AccordError("noise must be > 0 (a rater without noise gives a step function, not a rating model)")
    _check_noisy_and_bias(params["noisy_factor"], params["bias_range"])
    return int(scale[0]), int(scale[1])


def _check_noisy_and_bias(factor: Any, bias_range: Any) -> None:
    """``noisy_factor`` multiplies a rater's noise sd, so must be a finite positive number (a NaN gave NaN sds, and
    every rating of a noisy rater silently the lowest grade); ``bias_range`` is the range of a shift's size."""
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not (math.isfinite(factor) and factor > 0):
        raise AccordError(f"noisy_factor must be a finite number > 0, got {factor!r}")
    pair = tuple(bias_range) if isinstance(bias_range, (tuple, list)) else ()
    if not (len(pair) == 2 and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                                   for v in pair) and 0 <= pair[0] <= pair[1]):
        raise AccordError(f"bias_range must be (low, high) with 0 <= low <= high, got {bias_range!r}")


def _exact_share(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """A random mask with exactly ``round(share * n)`` True entries."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: int(round(share * n))]] = True
    return mask


def _nonempty_subsets(rng: np.random.Generator, n: int, n_attr: int) -> np.ndarray:
    """``[n, n_attr]`` random subsets, each attribute in with probability 1/2, never empty."""
    subsets = rng.random((n, n_attr)) < 0.5
    forced = rng.integers(0, n_attr, n)
    subsets[np.arange(n), forced] |= ~subsets.any(axis=1)
    return subsets
