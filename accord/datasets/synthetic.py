r"""Synthetic preference judgments with known ground truth: responses, utilities, annotators and their confusions.

The generator is the forward model of a Bayesian crowdsourcing analysis, written so that every latent quantity a
method might try to recover (a pair's true preference probability, its true label, each group's view, each rater's
confusion matrix and accuracy) is returned next to the observed table.

Generative story
----------------
Indices: prompt :math:`q`, response :math:`r`, pair :math:`i`, annotator :math:`j`, group :math:`g`, judgment
:math:`n`. Classes are coded :math:`k \in \{A, B, \text{tie}\}` in that order.

1. **Prompts and topics.** Each prompt draws a topic :math:`t_q \sim \mathrm{Uniform}(\text{TOPICS})` and a short
   question about it. Each prompt has :math:`R` (``n_responses_per_prompt``) responses, and its pairs are all
   :math:`\binom{R}{2}` pairs of its responses, so one response appears in :math:`R - 1` pairs (as in UKPConvArg1
   and crowd Bradley-Terry data); prompts are added until there are ``n_pairs`` pairs (the last one may be partial).
   Which response of a pair is shown as A is a fair coin, so position carries no information.

2. **Responses and utility.** Each response draws interpretable features: ``n_facts`` :math:`f_r \sim
   \mathrm{Uniform}\{0..4\}` relevant supporting facts on its topic, ``n_filler`` :math:`v_r \sim
   \mathrm{Uniform}\{0..V\}` vague filler sentences (:math:`V` = ``max_filler``, default 2) and a ``tone`` :math:`o_r \in \{-1, 0, +1\}` (probabilities
   1/4, 1/2, 1/4) shown by its opening sentence. Its latent utility is a known linear function of these features
   (and hence of its text):

   .. math:: u_r = s\,\big(0.8\,(f_r - 2) - 0.5\,(v_r - V/2) + 0.7\,o_r\big)

   with :math:`s` = ``utility_scale`` (larger means easier pairs). With ``with_text`` each response's text is the
   opener, its facts and fillers in random order, and a neutral closer, so a reward model can learn :math:`u`
   from the text alone; filler sentences make length an imperfect cue (see *Surface biases*).

3. **Pair preference (Bradley-Terry-Davidson).** The gap :math:`d_i = u_{A(i)} - u_{B(i)}`. For group
   :math:`g`, the gap is :math:`d_{ig} = -d_i` when :math:`g \ge 1` and the pair's topic is contested, else
   :math:`d_i` (genuine, context-dependent disagreement: on contested topics every group other than group 0
   prefers the other side). Ties follow Davidson's (1970) extension of Bradley-Terry:

   .. math::

      P_g(A) = \frac{e^{d/2}}{e^{d/2} + e^{-d/2} + \nu}, \quad
      P_g(\text{tie}) = \frac{\nu}{2\cosh(d/2) + \nu}, \quad
      P_g(B) = \frac{e^{-d/2}}{e^{d/2} + e^{-d/2} + \nu}

   with :math:`d = d_{ig}`, so ties are most likely when :math:`|d|` is small and :math:`P_g(A \mid \text{not
   tie}) = \sigma(d_{ig})` is exactly Bradley-Terry. :math:`\nu \ge 0` is solved (bisection) so that the mean
   :math:`P(\text{tie})` over pairs equals ``tie_rate``.

4. **True labels.** One uniform :math:`U_i` per pair gives group 0's label by inverse CDF over (A, tie, B);
   groups whose gap is mirrored use :math:`1 - U_i`, which gives exactly the swapped label (A :math:`\leftrightarrow`
   B, tie stays tie). So groups share one label where they agree and hold opposite labels on contested topics.
   The population's true label (``gold``) is the label of a randomly drawn member of the population: the label
   of group :math:`g^*_i \sim \mathrm{Categorical}(w)`, with group shares :math:`w` (``group_shares``). Hence

   .. math:: P(\text{gold}_i = k) = \sum_g w_g P_g(k), \qquad
             \texttt{true\_p\_a}_i = \sum_g w_g\,\sigma(d_{ig}) = P(\text{gold}_i = A \mid \text{not tie}).

5. **Annotators.** Each annotator has a type (exact shares from ``annotator_mix``, largest-remainder rounding), a
   group (exact shares from ``group_shares``) and a confusion matrix, rows the true class, columns the report:

   .. math:: M_j = (1 - s_j)\,K_j + s_j\,\mathbf{1}\,q_j^\top, \qquad
             q_j = \big((1-\tau_j)\,b_j,\ (1-\tau_j)(1-b_j),\ \tau_j\big)

   where :math:`s_j` is the probability of a content-free answer drawn from :math:`q_j` (position bias
   :math:`b_j`, tie share :math:`\tau_j`) and :math:`K_j` is the attentive kernel with accuracy :math:`c_j`:
   true A :math:`\to` A with :math:`c_j`, B with :math:`(1-c_j)(1-t_0)`, tie with :math:`(1-c_j)\,t_0` (mirrored for
   B; a true tie is reported as tie with :math:`c_j`, else A or B evenly), with :math:`t_0` = ``tie_rate``.

   =============== ======================== ===================== ================= ============
   type            :math:`c_j`              :math:`s_j`           :math:`b_j`       :math:`\tau_j`
   =============== ======================== ===================== ================= ============
   reliable        0.65 + 0.30 Beta(3, 2)   0                     --                --
   spammer         --                       1                     0.5               :math:`t_0`
   adversarial     0.70 + 0.25 Beta(3, 2)   0                     --                --
   position_biased as reliable              Uniform(0.5, 0.9)     Uniform(0.85, 1)  :math:`t_0`
   tie_prone       as reliable              Uniform(0.3, 0.6)     0.5               1
   length_biased   as reliable              0                     --                --
   flattery_biased as reliable              0                     --                --
   =============== ======================== ===================== ================= ============

   An adversarial rater's kernel reports the opposite side with probability :math:`c_j` (and a side, evenly,
   for a true tie).

   *Surface biases.* A response's ``length`` :math:`\ell_r` is the number of sentences in its body (facts, fillers
   and an optional flattering sentence); with probability ``flattery_rate`` a response flatters the asker
   (``flattery`` :math:`\phi_r = 1`: one sentence praising the question, no utility). A ``length_biased`` rater
   has a sensitivity :math:`\beta_j \sim \mathrm{Uniform}(0.3, 1.5)` to the length difference, a
   ``flattery_biased`` rater :math:`\gamma_j \sim \mathrm{Uniform}(1, 3)` to the flattery difference (0 for
   every other type): their report's odds of A against B are multiplied by
   :math:`\exp(\beta_j (\ell_A - \ell_B) + \gamma_j (\phi_A - \phi_B))`, the tie probability unchanged,

   .. math:: \operatorname{logit} P(y = A \mid y \ne \text{tie}, z) =
             \operatorname{logit} \frac{M_j[z, A]}{M_j[z, A] + M_j[z, B]} + \beta_j\,\Delta\ell_i
             + \gamma_j\,\Delta\phi_i,

   so the pull grows with the difference and vanishes for responses of equal length. Length carries
   information about utility only through facts and fillers: their covariance is
   :math:`0.8\,\mathrm{Var}\,f - 0.5\,\mathrm{Var}\,v` (times :math:`s`). With the default :math:`V = 2` that
   is much - a correlation of about 0.6 (:math:`0.8 \cdot 2 - 0.5 \cdot 2/3` over
   :math:`\sqrt{(2 + 2/3)\,\mathrm{Var}\,u}`, flattery aside), so a length-biased rater's pull is mostly towards
   better responses; with :math:`V = 5` (:math:`\mathrm{Var}\,v = 35/12`) it is about 0.04: length is then
   uninformative of utility, and a length-biased rater's pull is noise. Flattery carries none.
   ``annotators.length_bias`` and ``flattery_bias`` hold :math:`\beta_j` and :math:`\gamma_j`; ``accuracy`` and
   ``position_bias`` describe the rater's kernel without the surface pull.

6. **Workload.** Pair :math:`i` receives :math:`m_i` judgments (``judgments_per_pair``: fixed, or uniform on an
   inclusive range). Annotator activity is log-normal, :math:`a_j = \exp(\sigma z_j)`, :math:`z_j \sim N(0,1)`,
   :math:`\sigma` = ``activity_skew`` (0 gives equal workloads; larger gives a longer tail: a few raters with
   many judgments, many with few). Each pair's :math:`m_i` raters are drawn with probability :math:`\propto a_j`
   without replacement (duplicates are redrawn), so no rater judges a pair twice.

7. **Judgments.** Rater :math:`j` on pair :math:`i` reports :math:`y_n \sim \mathrm{Categorical}(M_j[z_{ig_j}])`
   where :math:`z_{ig_j}` is the true label of the rater's group. So ``annotators.accuracy``
   :math:`= \sum_k \pi_{g_j k} M_j[k, k]` (with :math:`\pi_g` the expected prevalence of true class :math:`k` for
   group :math:`g`) is the real probability that a judgment of this rater equals the true label, and
   ``position_bias`` (:math:`P(y = A \mid y \ne \text{tie})`) and ``tie_rate`` (:math:`P(y = \text{tie})`) are
   the rater's real, observable answer rates.

Everything is vectorized with numpy (the text is the only per-row Python work) and fully determined by ``seed``:
independent random streams are spawned for structure, annotators, workload, true labels, judgments and text, so
``with_text`` changes no label.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from accord.datasets.errors import AccordError
from accord.datasets.schema import PREFERENCE_LABELS, validate

__all__ = [
    "ANNOTATOR_TYPES",
    "DEFAULT_ANNOTATOR_MIX",
    "TOPICS",
    "UTILITY_WEIGHTS",
    "SyntheticData",
    "sample_candidates",
    "make_synthetic",
]

# New types go at the end: a type's code is its position, and earlier codes stay what they were.
ANNOTATOR_TYPES: tuple[str, ...] = ("reliable", "spammer", "adversarial", "position_biased", "tie_prone",
                                    "length_biased", "flattery_biased")
DEFAULT_ANNOTATOR_MIX: dict[str, float] = {
    "reliable": 0.6,
    "spammer": 0.15,
    "adversarial": 0.05,
    "position_biased": 0.1,
    "tie_prone": 0.1,
}
# Weights of the utility's features (see the module docstring); exposed so tests and examples can rebuild u.
UTILITY_WEIGHTS: dict[str, float] = {"n_facts": 0.8, "n_filler": -0.5, "tone": 0.7}
_FEATURE_CENTRES: dict[str, float] = {"n_facts": 2.0, "tone": 0.0}  # fillers: centred at max_filler / 2
MAX_FACTS = 4
MAX_FILLER = 2

# Class codes follow schema.PREFERENCE_LABELS: 0 = "A", 1 = "B", 2 = "tie".
_A, _B, _TIE = 0, 1, 2

# Topics in order of how contested they are: an integer ``contested_topics=k`` takes the first k.
# Each topic: three question subjects and six supporting facts (a response cites up to MAX_FACTS of them).
TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "politics": {
        "subjects": ("voting in a local election", "contacting my representative", "following a new bill"),
        "facts": (
            "Local elections often decide school budgets and zoning rules.",
            "Many councils publish meeting agendas online a week in advance.",
            "Registering to vote early avoids problems on election day.",
            "Nonpartisan voter guides summarise each candidate's positions.",
            "A short personal letter to a representative is read more often than a form email.",
            "Bill texts and amendments are public on the legislature's website.",
        ),
    },
    "parenting": {
        "subjects": ("toddler bedtime routines", "screen time for young children", "picky eating in kids"),
        "facts": (
            "A consistent bedtime routine helps young children fall asleep faster.",
            "Dimming the lights an hour before bed supports natural melatonin release.",
            "Pediatric guidelines suggest limiting recreational screen time for toddlers.",
            "Offering a new food many times increases the chance a child accepts it.",
            "Children copy the eating habits they see at the family table.",
            "Clear, predictable rules reduce bedtime arguments.",
        ),
    },
    "diet": {
        "subjects": ("cutting down on sugar", "eating more protein", "intermittent fasting"),
        "facts": (
            "Sugary drinks are the largest source of added sugar for many adults.",
            "Reading nutrition labels reveals sugar hidden under other names.",
            "Legumes, eggs and fish are affordable sources of protein.",
            "Spreading protein across meals supports muscle repair.",
            "Fasting windows work best when total calorie intake stays adequate.",
            "People with diabetes should consult a doctor before fasting.",
        ),
    },
    "finance": {
        "subjects": ("building an emergency fund", "paying off credit card debt", "starting to invest"),
        "facts": (
            "An emergency fund usually covers three to six months of expenses.",
            "Automatic transfers on payday make saving consistent.",
            "Paying the highest-interest card first minimises total interest.",
            "Low-cost index funds spread risk across many companies.",
            "Fees compound over time just like returns do.",
            "A high-yield savings account keeps emergency money liquid.",
        ),
    },
    "cooking": {
        "subjects": ("baking bread at home", "cooking rice on the stove", "roasting vegetables"),
        "facts": (
            "Bread dough needs time to rise in a warm spot.",
            "Weighing flour gives more consistent results than measuring cups.",
            "Rinsing rice removes surface starch and prevents clumping.",
            "Letting rice rest covered for ten minutes finishes the steaming.",
            "Vegetables roast evenly when cut into pieces of similar size.",
            "A hot oven around 220 degrees Celsius browns vegetables well.",
        ),
    },
    "travel": {
        "subjects": ("packing for a week abroad", "avoiding jet lag", "travelling on a budget"),
        "facts": (
            "Rolling clothes saves space in a carry-on bag.",
            "A packing list prevents forgetting chargers and documents.",
            "Getting daylight at the destination helps reset the body clock.",
            "Shifting sleep by an hour a day before departure eases jet lag.",
            "Booking flights midweek is often cheaper.",
            "Public transport passes save money in most large cities.",
        ),
    },
    "fitness": {
        "subjects": ("starting to run", "building strength at home", "stretching after workouts"),
        "facts": (
            "Alternating running and walking intervals builds endurance safely.",
            "Increasing weekly distance by about ten percent limits injury risk.",
            "Bodyweight squats and push-ups need no equipment.",
            "Progressive overload means gradually adding reps or resistance.",
            "Gentle stretching after exercise can ease stiffness.",
            "Rest days let muscles recover and grow stronger.",
        ),
    },
    "gardening": {
        "subjects": ("growing tomatoes", "keeping houseplants alive", "starting a compost pile"),
        "facts": (
            "Tomatoes need at least six hours of direct sunlight a day.",
            "Watering at the base of the plant helps prevent leaf disease.",
            "Most houseplants die from overwatering rather than underwatering.",
            "Checking soil moisture with a finger tells you when to water.",
            "A compost pile needs a mix of green and brown material.",
            "Turning compost every few weeks adds oxygen and speeds decay.",
        ),
    },
}
_TOPIC_NAMES: tuple[str, ...] = tuple(TOPICS)
_N_FACTS_PER_TOPIC = 6
_N_SUBJECTS_PER_TOPIC = 3
_QUESTION_TEMPLATES: tuple[str, ...] = (
    "What should I know about {}?",
    "Any advice on {}?",
    "How do I get started with {}?",
    "What matters most when it comes to {}?",
)
# Openers carry the tone (tone index 0 = -1, 1 = 0, 2 = +1); fillers and closers carry no information.
_OPENERS: tuple[tuple[str, ...], ...] = (
    ("Ugh, fine, whatever.", "Honestly, this is not worth much thought.", "Not sure why you ask, but okay."),
    ("Here is an answer.", "Okay, let me answer.", "Some thoughts on this."),
    (
        "Great question, here is a clear and specific answer.",
        "Here is a precise, well-organised answer.",
        "Happy to help with a clear, concrete answer.",
    ),
)
_FILLERS: tuple[str, ...] = (
    "It really depends on a lot of things.",
    "Everyone has their own opinion about this.",
    "There are many factors to consider here.",
    "Results may vary from person to person.",
    "This is a complicated subject in general.",
    "Some people say one thing and others say another.",
)
_CLOSERS: tuple[str, ...] = ("Hope this helps.", "Good luck.", "Let me know if you have questions.", "")
# A flattering sentence praises the asker and says nothing about the topic: no utility.
_FLATTERY: tuple[str, ...] = (
    "What a thoughtful question, you clearly have a sharp eye for this.",
    "You are obviously someone who asks the right questions.",
    "Brilliant question, it shows real insight on your part.",
)
# Bias strengths of the surface-biased rater types (log-odds per unit difference; see the module docstring).
LENGTH_BIAS_RANGE: tuple[float, float] = (0.3, 1.5)
FLATTERY_BIAS_RANGE: tuple[float, float] = (1.0, 3.0)
# Share of flattering responses when flattery-biased raters are present and ``flattery_rate`` is not given.
DEFAULT_FLATTERY_RATE = 0.3


@dataclass(frozen=True)
class SyntheticData:
    """A synthetic judgments table and the ground truth that generated it (see the module docstring).

    Attributes
    ----------
    judgments
        Validated preference-form table, one row per judgment: ``pair_id``, ``annotator``, ``label``, (with text:
        ``prompt``, ``response_a``, ``response_b``), ``response_a_id``, ``response_b_id``, ``annotator_type``,
        ``annotator_group``, ``item_topic`` (the last three categorical) and ``gold`` (= ``true_label``).
    true_label
        Per ``pair_id``: the population's true label, ``"A"``, ``"B"`` or ``"tie"``.
    true_p_a
        Per ``pair_id``: the population's probability of preferring A over B, ``sum_g w_g sigmoid(d_ig)`` (ties
        excluded: ``P(gold == "A" | gold != "tie")``).
    true_p_a_by_group
        ``pair_id`` x group (``"g0"``, ``"g1"``, ...): each group's ``sigmoid(d_ig)``.
    annotators
        Per annotator (index ``annotator``): ``type``, ``group``, ``accuracy`` (P(label == true label of their
        group)), ``spam_prob``, ``position_bias`` (P(label == "A" | label != "tie")), ``tie_rate``
        (P(label == "tie")), ``attentive_accuracy`` (c_j; NaN for spammers), ``activity`` (relative workload
        weight), ``n_judgments``, ``length_bias`` and ``flattery_bias`` (the surface-bias strengths, 0 for raters
        without that bias). ``accuracy`` is against the pair's label as drawn (step 4), which the class models'
        ``reliability`` estimates; the pairwise models' (crowd Bradley-Terry, ordinal) is against the better
        response, which the drawn label is not always, so it reads lower wherever labels are noisy.
    responses
        Per response (index ``response_id``): ``prompt_id``, ``prompt``, ``topic``, ``text`` (only with
        ``with_text``), ``utility``, the features ``n_facts``, ``n_filler``, ``tone``, ``flattery`` (0/1) and
        ``length`` (sentences in the body).
    true_p_tie
        Per ``pair_id``: P(tie), the same for every group.
    true_label_by_group
        ``pair_id`` x group: each group's true label (what that group's raters are scored against).
    confusion
        ``[n_annotators, 3, 3]`` confusion matrices in ``annotators`` order; rows the true class, columns the
        reported class, both in the order ``("A", "B", "tie")``.
    params
        The arguments of the call that made this data.
    """

    judgments: pd.DataFrame
    true_label: pd.Series
    true_p_a: pd.Series
    true_p_a_by_group: pd.DataFrame
    annotators: pd.DataFrame
    responses: pd.DataFrame
    true_p_tie: pd.Series
    true_label_by_group: pd.DataFrame
    confusion: np.ndarray = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)

    def sample_candidates(self, prompt_ids: Sequence[str], n: int, seed: int = 0) -> pd.DataFrame:
        """``n`` fresh responses to each of ``prompt_ids``, drawn as the generator draws responses (see
        :func:`sample_candidates`), with their known utility: the candidates of best-of-n."""
        if isinstance(prompt_ids, (str, bytes)) or not isinstance(prompt_ids, Iterable):
            # a bare id was read letter by letter ("prompt_id 'p' is not a prompt"), a number was Python's TypeError
            raise AccordError(f"prompt_ids must be a sequence of prompt ids, one set of candidates per prompt (e.g. "
                              f"[{prompt_ids!r}]), not the {type(prompt_ids).__name__} {prompt_ids!r}")
        prompts = self.responses.drop_duplicates("prompt_id").set_index("prompt_id")
        missing = [p for p in prompt_ids if p not in prompts.index]
        if missing:
            raise AccordError(f"prompt_id {missing[0]!r} is not a prompt of this data")
        # drawn in the data's order of the prompts, returned in the order asked: a prompt's candidates were those of
        # its place in prompt_ids, so the same prompts listed in another order each drew other candidates
        asked = list(prompt_ids)
        chosen = prompts[prompts.index.isin(asked)] if len(set(asked)) == len(asked) else prompts.loc[asked]
        drawn = sample_candidates(chosen["prompt"].to_numpy(), chosen["topic"].astype(str).to_numpy(), n,
                                  utility_scale=self.params["utility_scale"],
                                  flattery_rate=self.params.get("flattery_rate") or 0.0,
                                  max_filler=self.params.get("max_filler", MAX_FILLER), seed=seed,
                                  prompt_ids=chosen.index.to_numpy())
        place = pd.Series(np.arange(len(asked)), index=pd.Index(asked, dtype=chosen.index.dtype))
        order = np.argsort(place.reindex(drawn["prompt_id"]).to_numpy(), kind="stable")  # each prompt's n in a run
        return drawn.iloc[order].reset_index(drop=True)

    def held_out_prompts(self, share: float = 0.2, seed: int = 0) -> pd.Series:
        """A train/test split by prompt: per ``pair_id`` (``true_label``'s order), True for the pairs of a seeded
        ``share`` of the prompts. Held-out responses then never appear in a training pair (the pairs of one prompt
        share responses, so a split by pair would leak them)."""
        if not (_is_real(share) and 0.0 < share < 1.0):
            raise AccordError(f"share must be in (0, 1), got {share!r}")
        check_int("seed", seed, 0)  # numpy's raw "expected non-negative integer" named nothing
        first = self.judgments.drop_duplicates("pair_id").set_index("pair_id")["response_a_id"]
        prompt_of_pair = self.responses["prompt_id"].reindex(first.reindex(self.true_label.index)).to_numpy()
        prompts = np.unique(prompt_of_pair)
        size = max(1, round(share * len(prompts)))
        if size >= len(prompts):
            # every prompt held out: no pair left to train on, which no split means (a 1-prompt set, or share 0.9
            # of 2 prompts, gave an all-True mask without a word)
            raise AccordError(f"share={share!r} of the data's {len(prompts)} prompt(s) holds out every prompt, leaving "
                              "none to train on: use a smaller share or more pairs (n_pairs)")
        rng = np.random.default_rng([seed, 20250])
        test_prompts = rng.choice(prompts, size=size, replace=False)
        return pd.Series(np.isin(prompt_of_pair, test_prompts), index=self.true_label.index, name="held_out")


def make_synthetic(
    n_pairs: int = 1000,
    n_annotators: int = 100,
    judgments_per_pair: int | tuple[int, int] = 5,
    *,
    annotator_mix: Mapping[str, float] | None = None,
    n_groups: int = 1,
    contested_topics: int | Sequence[str] = 2,
    group_shares: Sequence[float] | None = None,
    tie_rate: float = 0.1,
    n_responses_per_prompt: int = 4,
    utility_scale: float = 1.0,
    activity_skew: float = 1.0,
    flattery_rate: float | None = None,
    max_filler: int = MAX_FILLER,
    with_text: bool = True,
    seed: int = 0,
) -> SyntheticData:
    """Generate preference judgments with known ground truth (the generative story is in the module docstring).

    Parameters
    ----------
    n_pairs
        Number of compared pairs.
    n_annotators
        Number of annotators (some may end up with no judgments when the workload is skewed).
    judgments_per_pair
        Judgments per pair: an int, or an inclusive ``(low, high)`` range drawn uniformly per pair. At most
        ``n_annotators``.
    annotator_mix
        Shares of annotator types (keys from :data:`ANNOTATOR_TYPES`; missing types get 0; normalised). Default
        :data:`DEFAULT_ANNOTATOR_MIX`.
    n_groups
        Number of annotator groups. With 2 or more, groups other than group 0 prefer the other side on contested
        topics.
    contested_topics
        The contested topics: an int ``k`` (the first ``k`` of :data:`TOPICS`) or topic names. Ignored when
        ``n_groups == 1``.
    group_shares
        Population share of each group (normalised); default equal. Sets both the share of annotators in each
        group and the weights of the population's true preference.
    tie_rate
        Expected share of pairs whose true label is a tie (Davidson's model; 0 means no true ties). Also the
        share of ties among raters' errors and content-free answers.
    n_responses_per_prompt
        Responses per prompt; every pair of them is compared, so each response appears in ``R - 1`` pairs.
    utility_scale
        Multiplies every utility: larger makes preferences more one-sided.
    activity_skew
        Log-normal sigma of annotator activity: 0 gives equal workloads, larger a longer tail.
    flattery_rate
        Share of responses that flatter the asker (a sentence with no utility). Default:
        :data:`DEFAULT_FLATTERY_RATE` when the mix has ``flattery_biased`` raters, else 0.
    max_filler
        Most vague filler sentences in a response (0 to 6; uniform from 0). The default 2 leaves length a strong
        cue of utility (correlation about 0.6); 5 makes it uninformative (about 0.04; see *Surface biases*).
    with_text
        Add prompt and response texts (``prompt``, ``response_a``, ``response_b`` in ``judgments``; ``text`` in
        ``responses``). Labels do not depend on it.
    seed
        Seed of every random draw.
    """
    if annotator_mix is not None and not isinstance(annotator_mix, Mapping):
        # a bare type name was taken apart as a sequence ("dictionary update sequence element #0 ...")
        raise AccordError(f"annotator_mix must map annotator types to shares, e.g. {{'reliable': 0.8, 'spammer': "
                          f"0.2}}, got {annotator_mix!r}")
    params: dict[str, Any] = {
        "n_pairs": n_pairs,
        "n_annotators": n_annotators,
        "judgments_per_pair": judgments_per_pair,
        "annotator_mix": dict(annotator_mix) if annotator_mix is not None else dict(DEFAULT_ANNOTATOR_MIX),
        "n_groups": n_groups,
        "contested_topics": (
            tuple(contested_topics)
            if isinstance(contested_topics, Sequence) and not isinstance(contested_topics, str)
            else contested_topics
        ),
        "group_shares": tuple(group_shares) if group_shares is not None else None,
        "tie_rate": tie_rate,
        "n_responses_per_prompt": n_responses_per_prompt,
        "utility_scale": utility_scale,
        "activity_skew": activity_skew,
        "flattery_rate": flattery_rate,
        "max_filler": max_filler,
        "with_text": with_text,
        "seed": seed,
    }
    counts_range = _check_arguments(params)
    mix = _normalised_mix(params["annotator_mix"])
    if flattery_rate is None:
        flattery_rate = DEFAULT_FLATTERY_RATE if mix[ANNOTATOR_TYPES.index("flattery_biased")] > 0 else 0.0
        params["flattery_rate"] = flattery_rate
    elif flattery_rate == 0 and mix[ANNOTATOR_TYPES.index("flattery_biased")] > 0:
        # no response flatters: the raters' flattery_bias (in the truth) never moved a vote, unsaid
        raise AccordError(f"flattery_rate={flattery_rate!r} with flattery_biased raters in annotator_mix: no response "
                          "flatters, so their bias never acts; give flattery_rate > 0 (or leave it unset for "
                          f"{DEFAULT_FLATTERY_RATE}), or no flattery_biased raters")
    shares = _group_shares(group_shares, n_groups)
    _check_every_group_has_raters(shares, n_annotators)
    contested = _contested_mask(contested_topics, n_groups)

    # Independent streams: adding text, or changing the workload, leaves every other draw unchanged.
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    rng_structure, rng_annotators, rng_workload, rng_truth, rng_judge, rng_text, rng_flattery, rng_bias = streams

    # -- structure: prompts, responses, pairs --------------------------------------------------------------
    r = n_responses_per_prompt
    first, second = np.triu_indices(r, 1)
    per_prompt = len(first)
    n_prompts = -(-n_pairs // per_prompt)
    n_responses = n_prompts * r
    pair_prompt = np.arange(n_pairs) // per_prompt
    combo = np.arange(n_pairs) % per_prompt
    resp_x = pair_prompt * r + first[combo]
    resp_y = pair_prompt * r + second[combo]
    swap = rng_structure.random(n_pairs) < 0.5  # fair coin for which side is shown as A
    resp_a = np.where(swap, resp_y, resp_x)
    resp_b = np.where(swap, resp_x, resp_y)

    prompt_topic = rng_structure.integers(0, len(_TOPIC_NAMES), n_prompts)
    prompt_subject = rng_structure.integers(0, _N_SUBJECTS_PER_TOPIC, n_prompts)
    prompt_template = rng_structure.integers(0, len(_QUESTION_TEMPLATES), n_prompts)
    n_facts = rng_structure.integers(0, MAX_FACTS + 1, n_responses)
    n_filler = rng_structure.integers(0, max_filler + 1, n_responses)
    tone = rng_structure.choice(np.array([-1, 0, 1]), size=n_responses, p=[0.25, 0.5, 0.25])
    utility = _utility(n_facts, n_filler, tone, utility_scale, max_filler)
    # flattery has a stream of its own: without it (rate 0) every other draw and text is what it always was
    flattery = (rng_flattery.random(n_responses) < flattery_rate).astype(np.int64)
    length = n_facts + n_filler + flattery

    # -- true preferences ------------------------------------------------------------------------------------
    gap = utility[resp_a] - utility[resp_b]
    pair_topic = prompt_topic[pair_prompt]
    flipped = contested[pair_topic][:, None] & (np.arange(n_groups) >= 1)[None, :]  # [n_pairs, n_groups]
    p_a_group = _sigmoid(np.where(flipped, -gap[:, None], gap[:, None]))
    p_tie = _davidson_ties(gap, tie_rate)
    true_p_a = p_a_group @ shares

    # Group 0's label by inverse CDF over (A, tie, B); mirrored groups get the swapped label (same as using 1 - U).
    base_p_a = _sigmoid(gap) * (1.0 - p_tie)
    u = rng_truth.random(n_pairs)
    base_label = np.where(u < base_p_a, _A, np.where(u < base_p_a + p_tie, _TIE, _B))
    swapped_label = np.array([_B, _A, _TIE])[base_label]
    group_label = np.where(flipped, swapped_label[:, None], base_label[:, None])  # [n_pairs, n_groups]
    gold_group = _categorical(rng_truth, np.broadcast_to(shares, (n_pairs, n_groups)))
    gold = group_label[np.arange(n_pairs), gold_group]

    # -- annotators ------------------------------------------------------------------------------------------
    ann = _draw_annotators(rng_annotators, n_annotators, mix, shares, tie_rate, activity_skew)
    is_length = ann["type"] == ANNOTATOR_TYPES.index("length_biased")
    is_flattery = ann["type"] == ANNOTATOR_TYPES.index("flattery_biased")
    length_bias = np.where(is_length, rng_bias.uniform(*LENGTH_BIAS_RANGE, n_annotators), 0.0)
    flattery_bias = np.where(is_flattery, rng_bias.uniform(*FLATTERY_BIAS_RANGE, n_annotators), 0.0)
    confusion = _confusion(ann, tie_rate)
    # Expected prevalence of each true class for each group: sigma(d_ig)(1 - P_tie), ..., P_tie, averaged.
    prevalence = np.stack(
        [
            (p_a_group * (1.0 - p_tie)[:, None]).mean(axis=0),
            ((1.0 - p_a_group) * (1.0 - p_tie)[:, None]).mean(axis=0),
            np.full(n_groups, p_tie.mean()),
        ],
        axis=1,
    )  # [n_groups, 3]
    pi = prevalence[ann["group"]]  # [n_annotators, 3]
    accuracy = np.einsum("jk,jkk->j", pi, confusion)
    answer_rates = np.einsum("jk,jkl->jl", pi, confusion)
    with np.errstate(invalid="ignore", divide="ignore"):
        position_bias = answer_rates[:, _A] / (answer_rates[:, _A] + answer_rates[:, _B])

    # -- workload and judgments ------------------------------------------------------------------------------
    low, high = counts_range
    counts = (
        np.full(n_pairs, low, dtype=np.int64)
        if low == high
        else rng_workload.integers(low, high + 1, n_pairs).astype(np.int64)
    )
    judge_pair, judge_ann = _assign(rng_workload, counts, ann["activity"])
    true_class = group_label[judge_pair, ann["group"][judge_ann]]
    probs = confusion[judge_ann, true_class]
    pull = (length_bias[judge_ann] * (length[resp_a] - length[resp_b])[judge_pair]
            + flattery_bias[judge_ann] * (flattery[resp_a] - flattery[resp_b])[judge_pair])
    probs = _surface_pull(probs, pull)
    label_code = _categorical(rng_judge, probs)
    n_judgments = np.bincount(judge_ann, minlength=n_annotators)

    # -- names and tables ------------------------------------------------------------------------------------
    pair_names = _names("pair", n_pairs)
    ann_names = _names("ann", n_annotators)
    resp_names = _names("resp", n_responses)
    prompt_names = _names("prompt", n_prompts)
    group_names = [f"g{g}" for g in range(n_groups)]
    pair_index = pd.Index(pair_names, name="pair_id", dtype="str")

    prompt_text = np.array(
        [
            _QUESTION_TEMPLATES[k].format(TOPICS[_TOPIC_NAMES[t]]["subjects"][s])
            for k, t, s in zip(prompt_template.tolist(), prompt_topic.tolist(), prompt_subject.tolist())
        ],
        dtype=object,
    )
    response_prompt = np.repeat(np.arange(n_prompts), r)
    responses = pd.DataFrame(
        {
            "prompt_id": _take_str(prompt_names, response_prompt),
            "prompt": _take_str(prompt_text, response_prompt),
            "topic": pd.Categorical.from_codes(prompt_topic[response_prompt], categories=list(_TOPIC_NAMES)),
            "utility": utility,
            "n_facts": n_facts,
            "n_filler": n_filler,
            "tone": tone,
            "flattery": flattery,
            "length": length,
        },
        index=pd.Index(resp_names, name="response_id", dtype="str"),
    )
    response_text: np.ndarray | None = None
    if with_text:
        response_text = _response_texts(rng_text, prompt_topic[response_prompt], n_facts, n_filler, tone, max_filler)
        response_text = _add_flattery(rng_flattery, response_text, flattery)
        responses.insert(3, "text", pd.array(response_text, dtype="str"))

    annotators = pd.DataFrame(
        {
            "type": pd.Categorical.from_codes(ann["type"], categories=list(ANNOTATOR_TYPES)),
            "group": pd.Categorical.from_codes(ann["group"], categories=group_names),
            "accuracy": accuracy,
            "spam_prob": ann["spam"],
            "position_bias": position_bias,
            "tie_rate": answer_rates[:, _TIE],
            "attentive_accuracy": np.where(ann["type"] == ANNOTATOR_TYPES.index("spammer"), np.nan, ann["c"]),
            "activity": ann["activity"],
            "n_judgments": n_judgments,
            "length_bias": length_bias,
            "flattery_bias": flattery_bias,
        },
        index=pd.Index(ann_names, name="annotator", dtype="str"),
    )

    columns: dict[str, Any] = {
        "pair_id": _take_str(pair_names, judge_pair),
        "annotator": _take_str(ann_names, judge_ann),
        "label": _take_str(PREFERENCE_LABELS, label_code),
    }
    if with_text:
        assert response_text is not None
        columns["prompt"] = _take_str(prompt_text, pair_prompt[judge_pair])
        columns["response_a"] = _take_str(response_text, resp_a[judge_pair])
        columns["response_b"] = _take_str(response_text, resp_b[judge_pair])
    columns["response_a_id"] = _take_str(resp_names, resp_a[judge_pair])
    columns["response_b_id"] = _take_str(resp_names, resp_b[judge_pair])
    columns["annotator_type"] = pd.Categorical.from_codes(ann["type"][judge_ann], categories=list(ANNOTATOR_TYPES))
    columns["annotator_group"] = pd.Categorical.from_codes(ann["group"][judge_ann], categories=group_names)
    columns["item_topic"] = pd.Categorical.from_codes(pair_topic[judge_pair], categories=list(_TOPIC_NAMES))
    columns["gold"] = _take_str(PREFERENCE_LABELS, gold[judge_pair])
    judgments = validate(pd.DataFrame(columns))

    group_columns = pd.Index(group_names, name="group")
    return SyntheticData(
        judgments=judgments,
        true_label=pd.Series(_take_str(PREFERENCE_LABELS, gold), index=pair_index, name="true_label"),
        true_p_a=pd.Series(true_p_a, index=pair_index, name="true_p_a"),
        true_p_a_by_group=pd.DataFrame(p_a_group, index=pair_index, columns=group_columns),
        annotators=annotators,
        responses=responses,
        true_p_tie=pd.Series(p_tie, index=pair_index, name="true_p_tie"),
        true_label_by_group=pd.DataFrame(
            {name: _take_str(PREFERENCE_LABELS, group_label[:, g]) for g, name in enumerate(group_names)},
            index=pair_index,
        ).rename_axis(columns="group"),
        confusion=confusion,
        params=params,
    )


# -- arguments ----------------------------------------------------------------------------------------------


def _check_arguments(params: dict[str, Any]) -> tuple[int, int]:
    """Reject impossible settings with a one-line message; return the (low, high) judgments-per-pair range."""

    def positive_int(name: str, minimum: int = 1) -> int:
        return check_int(name, params[name], minimum)

    positive_int("n_pairs")
    n_annotators = positive_int("n_annotators")
    positive_int("n_groups")
    positive_int("n_responses_per_prompt", 2)
    per_pair = params["judgments_per_pair"]
    if isinstance(per_pair, (tuple, list)) and len(per_pair) == 2:
        low, high = per_pair
    else:
        low = high = per_pair
    for value in (low, high):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise AccordError(f"judgments_per_pair must be an int >= 1 or a (low, high) pair of them, got {per_pair!r}")
    if low > high:
        raise AccordError(f"judgments_per_pair range is empty: {per_pair!r}")
    if high > n_annotators:
        raise AccordError(
            f"judgments_per_pair ({high}) exceeds n_annotators ({n_annotators}): a rater cannot judge a pair twice"
        )
    tie_rate = params["tie_rate"]
    if not (_is_real(tie_rate) and 0.0 <= tie_rate < 1.0):
        raise AccordError(f"tie_rate must be in [0, 1), got {tie_rate!r}")
    rate = params["flattery_rate"]
    if rate is not None and not (_is_real(rate) and 0.0 <= rate <= 1.0):
        raise AccordError(f"flattery_rate must be in [0, 1], got {rate!r}")
    _check_max_filler(params["max_filler"])
    for name in ("utility_scale", "activity_skew"):
        value = params[name]
        if not (_is_real(value) and math.isfinite(value) and value >= 0):
            raise AccordError(f"{name} must be a finite number >= 0, got {value!r}")
    if isinstance(params["seed"], bool) or not isinstance(params["seed"], (int, np.integer)) or params["seed"] < 0:
        raise AccordError(f"seed must be a non-negative integer, got {params['seed']!r}")
    return int(low), int(high)


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int, or one error naming the setting ``name``: a bool, a float or a text is no count (the
    synthetic generators share this check)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AccordError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(name: str, value: Any) -> float:
    """``value`` as a float, or one error naming the setting ``name`` (a text or a bool is no number; the range is
    the caller's to check)."""
    if not _is_real(value):
        raise AccordError(f"{name} must be a number, got {value!r}")
    return float(value)


def _check_max_filler(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= len(_FILLERS):
        raise AccordError(f"max_filler must be an integer in [0, {len(_FILLERS)}], got {value!r}")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _normalised_mix(mix: Mapping[str, float]) -> np.ndarray:
    unknown = [k for k in mix if k not in ANNOTATOR_TYPES]
    if unknown:
        raise AccordError(f"unknown annotator type {unknown[0]!r}; expected some of {list(ANNOTATOR_TYPES)}")
    if not all(_is_real(v) for v in mix.values()):
        raise AccordError(f"annotator_mix shares must be numbers, got {dict(mix)!r}")
    shares = np.array([float(mix.get(k, 0.0)) for k in ANNOTATOR_TYPES])
    if not np.all(np.isfinite(shares)) or (shares < 0).any() or shares.sum() <= 0:
        raise AccordError(f"annotator_mix shares must be finite, >= 0 and not all 0, got {dict(mix)!r}")
    return shares / shares.sum()


def _group_shares(group_shares: Sequence[float] | None, n_groups: int) -> np.ndarray:
    if group_shares is None:
        return np.full(n_groups, 1.0 / n_groups)
    if not all(_is_real(v) for v in np.ravel(np.asarray(group_shares, dtype=object))):
        raise AccordError(f"group_shares must be {n_groups} positive numbers, got {list(group_shares)!r}")
    shares = np.asarray(group_shares, dtype=float)
    if shares.shape != (n_groups,) or not np.all(np.isfinite(shares)) or (shares <= 0).any():
        raise AccordError(f"group_shares must be {n_groups} positive numbers, got {list(group_shares)!r}")
    return shares / shares.sum()


def _check_every_group_has_raters(shares: np.ndarray, n_annotators: int) -> None:
    """Refuse a group that would get no annotators: its view is part of every pair's gold label (see *True labels*),
    yet no judgment would ever show it, so the ground truth could not be recovered from the table."""
    counts = _largest_remainder(shares, n_annotators)
    if (counts == 0).any():
        g = int(np.flatnonzero(counts == 0)[0])
        raise AccordError(f"group g{g} (share {shares[g]:.3g}) gets none of the {n_annotators} annotators: use fewer "
                          "groups, larger shares or more annotators")


def _contested_mask(contested_topics: int | Sequence[str], n_groups: int) -> np.ndarray:
    """Boolean mask over TOPICS: which topics split the groups (none when there is a single group)."""
    mask = np.zeros(len(_TOPIC_NAMES), dtype=bool)
    if isinstance(contested_topics, (int, np.integer)) and not isinstance(contested_topics, bool):
        if not 0 <= contested_topics <= len(_TOPIC_NAMES):
            raise AccordError(f"contested_topics must be in 0..{len(_TOPIC_NAMES)}, got {contested_topics}")
        mask[: int(contested_topics)] = True
    elif isinstance(contested_topics, Sequence) and not isinstance(contested_topics, str):
        for topic in contested_topics:
            if topic not in TOPICS:
                raise AccordError(f"unknown contested topic {topic!r}; topics are {list(_TOPIC_NAMES)}")
            mask[_TOPIC_NAMES.index(topic)] = True
    else:
        raise AccordError(f"contested_topics must be an int or a list of topic names, got {contested_topics!r}")
    return mask if n_groups >= 2 else np.zeros_like(mask)


# -- the model ----------------------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow for large |x|.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _utility(n_facts: np.ndarray, n_filler: np.ndarray, tone: np.ndarray, scale: float,
             max_filler: int = MAX_FILLER) -> np.ndarray:
    """The latent utility of responses with these features (step 2 of the module docstring)."""
    return scale * (
        UTILITY_WEIGHTS["n_facts"] * (n_facts - _FEATURE_CENTRES["n_facts"])
        + UTILITY_WEIGHTS["n_filler"] * (n_filler - max_filler / 2)
        + UTILITY_WEIGHTS["tone"] * (tone - _FEATURE_CENTRES["tone"])
    )


def _surface_pull(probs: np.ndarray, pull: np.ndarray) -> np.ndarray:
    """Multiply the odds of A against B of each row of ``probs`` (A, B, tie) by ``exp(pull)``, P(tie) unchanged.
    Rows without a pull are returned as they are (bit for bit: an unbiased rater's draws never change)."""
    moved = pull != 0
    if not moved.any():
        return probs
    out = probs.copy()
    p_a, p_b = probs[moved, _A], probs[moved, _B]
    side = p_a + p_b
    with np.errstate(divide="ignore"):
        logit = np.log(p_a) - np.log(p_b) + pull[moved]
    out[moved, _A] = side * _sigmoid(logit)
    out[moved, _B] = side - out[moved, _A]
    return out


def _davidson_ties(gap: np.ndarray, tie_rate: float) -> np.ndarray:
    """Davidson's P(tie | d) of each pair, with nu chosen so that their mean is ``tie_rate``.

    Where a gap is so large that ``cosh(d / 2)`` overflows (a large ``utility_scale``) the same is solved in log
    space: there nu itself may lie beyond floating point, and the direct route gave NaN ties (and every gold "B").
    Smaller gaps keep the direct route, so the data of every ordinary setting are what they always were."""
    if tie_rate == 0.0 or np.all(np.abs(gap) < _DIRECT_GAP_LIMIT):
        return _davidson_tie(gap, _davidson_nu(gap, tie_rate))
    log_denom = np.logaddexp(0.5 * gap, -0.5 * gap)  # log(2 cosh(d / 2)), finite for every finite gap

    def mean_tie(log_nu: float) -> float:
        return float(np.mean(_sigmoid(log_nu - log_denom)))

    low, high = -1.0, 1.0
    while mean_tie(low) >= tie_rate:
        low *= 2.0
    while mean_tie(high) < tie_rate:  # ends: the mean tends to 1 > tie_rate
        high *= 2.0
    for _ in range(200):  # the bracket may span 1e5 or more on the log scale: more halvings than the direct 60
        mid = 0.5 * (low + high)
        if mean_tie(mid) < tie_rate:
            low = mid
        else:
            high = mid
    return _sigmoid(0.5 * (low + high) - log_denom)


# Gaps beyond this take the log-space route of _davidson_ties: cosh overflows near 1420, and the nu matching a tie
# rate must stay well inside floating point.
_DIRECT_GAP_LIMIT = 1000.0


def _davidson_tie(gap: np.ndarray, nu: float) -> np.ndarray:
    """Davidson's P(tie | d) = nu / (2 cosh(d/2) + nu)."""
    if nu == 0.0:
        return np.zeros_like(gap)
    with np.errstate(over="ignore"):
        return nu / (2.0 * np.cosh(0.5 * gap) + nu)


def _davidson_nu(gap: np.ndarray, tie_rate: float) -> float:
    """The Davidson tie parameter whose mean P(tie) over these pairs is ``tie_rate`` (monotone: bisection)."""
    if tie_rate == 0.0:
        return 0.0
    with np.errstate(over="ignore"):
        denom = 2.0 * np.cosh(0.5 * gap)

    def mean_tie(nu: float) -> float:
        return float(np.mean(nu / (denom + nu)))

    low, high = 0.0, 1.0
    while mean_tie(high) < tie_rate:
        high *= 2.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        if mean_tie(mid) < tie_rate:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of ``probs`` (rows sum to 1) by inverse CDF, vectorized."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cdf[:, -1]  # scale by the row total: immune to rounding in the sums
    return (u[:, None] >= cdf[:, :-1]).sum(axis=1)


def _largest_remainder(shares: np.ndarray, n: int) -> np.ndarray:
    """Integer counts summing to n that are as close as possible to ``shares * n``."""
    exact = shares * n
    counts = np.floor(exact).astype(np.int64)
    short = n - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


def _draw_annotators(
    rng: np.random.Generator, n: int, mix: np.ndarray, shares: np.ndarray, tie_rate: float, activity_skew: float
) -> dict[str, np.ndarray]:
    """Each annotator's type, group and confusion parameters (every array has length n)."""
    type_code = rng.permutation(np.repeat(np.arange(len(ANNOTATOR_TYPES)), _largest_remainder(mix, n)))
    group_code = rng.permutation(np.repeat(np.arange(len(shares)), _largest_remainder(shares, n)))
    # Draw every candidate parameter for everyone, then pick by type: the draws do not depend on the mix order.
    reliable_c = 0.65 + 0.30 * rng.beta(3.0, 2.0, n)
    flip_c = 0.70 + 0.25 * rng.beta(3.0, 2.0, n)
    biased_spam = rng.uniform(0.5, 0.9, n)
    biased_b = rng.uniform(0.85, 1.0, n)
    tie_spam = rng.uniform(0.3, 0.6, n)
    # Log-normal activity, normalised to mean 1 so the column reads as "times the average workload".
    log_activity = activity_skew * rng.standard_normal(n)
    if log_activity.max() > _LOG_ACTIVITY_LIMIT:
        # exp overflows (a large activity_skew): scale by the busiest rater first, or the column is inf / NaN
        log_activity -= log_activity.max()
    activity = np.exp(log_activity)
    activity /= activity.mean()

    is_type = {name: type_code == k for k, name in enumerate(ANNOTATOR_TYPES)}
    c = np.where(is_type["adversarial"], flip_c, reliable_c)
    spam = np.select(
        [is_type["spammer"], is_type["position_biased"], is_type["tie_prone"]],
        [np.ones(n), biased_spam, tie_spam],
        default=0.0,
    )
    b = np.where(is_type["position_biased"], biased_b, 0.5)
    tau = np.where(is_type["tie_prone"], 1.0, tie_rate)
    return {
        "type": type_code,
        "group": group_code,
        "c": c,
        "spam": spam,
        "b": b,
        "tau": tau,
        "flip": is_type["adversarial"],
        "activity": activity,
    }


# exp overflows near 709.8; below this the activities are exp(sigma z) as they always were
_LOG_ACTIVITY_LIMIT = 700.0


def _confusion(ann: dict[str, np.ndarray], tie_rate: float) -> np.ndarray:
    """``[n, 3, 3]`` matrices ``M_j = (1 - s_j) K_j + s_j 1 q_j^T`` (rows: true A, B, tie; columns: reported)."""
    c, flip, t0 = ann["c"], ann["flip"], tie_rate
    e = 1.0 - c
    n = len(c)
    # The attentive kernel of an honest rater; an adversary's is the same with the reported A and B swapped,
    # i.e. it reports the opposite side with probability c (and a side, evenly, for a true tie).
    honest = np.empty((n, 3, 3))
    honest[:, _A] = np.stack([c, e * (1 - t0), e * t0], axis=1)
    honest[:, _B] = np.stack([e * (1 - t0), c, e * t0], axis=1)
    honest[:, _TIE] = np.stack([e / 2, e / 2, c], axis=1)
    adversary = honest[:, :, [_B, _A, _TIE]]
    adversary[:, _TIE] = np.stack([c / 2, c / 2, e], axis=1)
    kernel = np.where(flip[:, None, None], adversary, honest)
    q = np.stack([(1 - ann["tau"]) * ann["b"], (1 - ann["tau"]) * (1 - ann["b"]), ann["tau"]], axis=1)
    s = ann["spam"][:, None, None]
    return (1.0 - s) * kernel + s * q[:, None, :]


def _assign(rng: np.random.Generator, counts: np.ndarray, activity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``counts[i]`` distinct annotators for each pair, each with probability proportional to ``activity``.

    Works on a ``[n_pairs, max(counts)]`` table: draw every slot with replacement, then redraw repeats until every
    row is distinct. Unused slots hold distinct sentinels (>= n_annotators) so they never repeat and sort last.
    After ``_WEIGHTED_ROUNDS`` rounds the few stubborn rows (saturated by the busiest raters) are redrawn
    uniformly, which always finishes because ``max(counts) <= n_annotators``.
    Returns the pair and annotator index of every judgment, pair-major.
    """
    n_pairs, n_ann = len(counts), len(activity)
    width = int(counts.max())
    cdf = np.cumsum(activity)
    cdf /= cdf[-1]

    def draw(size: int, weighted: bool) -> np.ndarray:
        if weighted:
            return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), n_ann - 1)
        return rng.integers(0, n_ann, size)

    slot = np.arange(width)
    unused = slot[None, :] >= counts[:, None]
    table = np.where(unused, n_ann + slot[None, :], draw(n_pairs * width, True).reshape(n_pairs, width))
    rows = np.arange(n_pairs)
    for round_ in range(_MAX_ROUNDS):
        sub = np.sort(table[rows], axis=1)
        repeat = np.zeros(sub.shape, dtype=bool)
        repeat[:, 1:] = sub[:, 1:] == sub[:, :-1]
        bad = repeat.any(axis=1)
        table[rows] = sub
        if not bad.any():
            break
        rows, sub, repeat = rows[bad], sub[bad], repeat[bad]
        sub[repeat] = draw(int(repeat.sum()), round_ < _WEIGHTED_ROUNDS)
        table[rows] = sub
    else:  # pragma: no cover - probability ~0; kept so a bug cannot loop forever
        raise RuntimeError("could not assign distinct annotators to every pair")
    keep = slot[None, :] < counts[:, None]  # real entries sort before the sentinels
    return np.repeat(np.arange(n_pairs), counts), table[keep]


_WEIGHTED_ROUNDS = 50
_MAX_ROUNDS = 100_000


# -- names and text -----------------------------------------------------------------------------------------


def _names(prefix: str, n: int) -> list[str]:
    """Zero-padded ids (``pair0007``) so that string order equals generation order."""
    width = len(str(max(n - 1, 0)))
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


def _take_str(names: Sequence[str] | np.ndarray, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A string column ``names[codes]``: convert the few distinct strings once, then gather (4x faster than
    converting a million Python objects)."""
    return pd.array(np.asarray(names, dtype=object), dtype="str").take(codes)


def _add_flattery(rng: np.random.Generator, texts: np.ndarray, flattery: np.ndarray) -> np.ndarray:
    """Put a flattering sentence after the opener of the flattering responses (``texts`` unchanged otherwise)."""
    if not flattery.any():
        return texts
    out = texts.copy()
    chosen = np.flatnonzero(flattery)
    sentence = np.array(_FLATTERY, dtype=object)[rng.integers(0, len(_FLATTERY), len(chosen))]
    for i, extra in zip(chosen.tolist(), sentence.tolist()):
        opener_end = out[i].index(".") + 1  # every opener is one sentence ending in its first full stop
        out[i] = f"{out[i][:opener_end]} {extra}{out[i][opener_end:]}"
    return out


def sample_candidates(
    prompts: Sequence[str],
    topics: Sequence[str],
    n: int,
    *,
    utility_scale: float = 1.0,
    flattery_rate: float = 0.0,
    max_filler: int = MAX_FILLER,
    seed: int = 0,
    prompt_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``n`` fresh responses to each prompt, drawn as :func:`make_synthetic` draws responses (features, text and
    utility; step 2 of the module docstring), for best-of-n on held-out prompts.

    Returns one row per candidate: ``prompt_id`` (``prompt_ids`` or the prompt's position), ``prompt``,
    ``candidate`` (0..n-1), ``text``, ``utility`` and the features ``n_facts``, ``n_filler``, ``tone``,
    ``flattery``, ``length``. For best-of-n at several ``n``, draw once with the largest and take each prompt's
    first candidates. ``utility_scale``, ``flattery_rate`` and ``max_filler`` mean what they mean in
    :func:`make_synthetic` (:meth:`SyntheticData.sample_candidates` passes the data's own).
    """
    check_int("n", n)
    check_int("seed", seed, 0)  # numpy's raw "expected non-negative integer" named nothing
    if len(prompts) != len(topics):
        raise AccordError(f"{len(prompts)} prompts but {len(topics)} topics")
    if prompt_ids is not None:
        # one id per prompt, each once: (prompt_id, candidate) names a candidate, and best-of-n groups by prompt_id
        if len(prompt_ids) != len(prompts):
            raise AccordError(f"{len(prompts)} prompts but {len(prompt_ids)} prompt_ids")
        repeated = pd.Index(prompt_ids).duplicated()
        if repeated.any():
            raise AccordError(f"prompt_id {prompt_ids[int(np.flatnonzero(repeated)[0])]!r} is given twice: name each "
                              "prompt once (n candidates are drawn for each)")
    unknown = [t for t in topics if t not in TOPICS]
    if unknown:
        raise AccordError(f"unknown topic {unknown[0]!r}; topics are {list(_TOPIC_NAMES)}")
    if not (_is_real(flattery_rate) and 0.0 <= flattery_rate <= 1.0):
        raise AccordError(f"flattery_rate must be in [0, 1], got {flattery_rate!r}")
    _check_max_filler(max_filler)
    rng = np.random.default_rng([seed, 77003])
    m = len(prompts) * int(n)
    prompt_code = np.repeat(np.arange(len(prompts)), n)
    topic = np.array([_TOPIC_NAMES.index(t) for t in topics], dtype=np.int64)[prompt_code]
    n_facts = rng.integers(0, MAX_FACTS + 1, m)
    n_filler = rng.integers(0, max_filler + 1, m)
    tone = rng.choice(np.array([-1, 0, 1]), size=m, p=[0.25, 0.5, 0.25])
    flattery = (rng.random(m) < flattery_rate).astype(np.int64)
    text = _add_flattery(rng, _response_texts(rng, topic, n_facts, n_filler, tone, max_filler), flattery)
    ids = np.asarray(prompt_ids if prompt_ids is not None else np.arange(len(prompts)).astype(str), dtype=object)
    return pd.DataFrame({
        "prompt_id": ids[prompt_code],
        "prompt": np.asarray(prompts, dtype=object)[prompt_code],
        "candidate": np.tile(np.arange(n), len(prompts)),
        "text": text,
        "utility": _utility(n_facts, n_filler, tone, utility_scale, max_filler),
        "n_facts": n_facts,
        "n_filler": n_filler,
        "tone": tone,
        "flattery": flattery,
        "length": n_facts + n_filler + flattery,
    })


def _response_texts(
    rng: np.random.Generator, topic: np.ndarray, n_facts: np.ndarray, n_filler: np.ndarray, tone: np.ndarray,
    max_filler: int = MAX_FILLER,
) -> np.ndarray:
    """Each response's text: a tone opener, its facts and fillers in random order, and a neutral closer.

    Sentence choices are drawn with numpy; only the final join is per-response Python.
    """
    n = len(topic)
    facts = np.array([f for name in _TOPIC_NAMES for f in TOPICS[name]["facts"]], dtype=object)
    # n_facts distinct facts of the topic: the first n_facts of a random permutation of its six.
    fact_pick = np.argsort(rng.random((n, _N_FACTS_PER_TOPIC)), axis=1)[:, :MAX_FACTS]
    fact_text = facts[topic[:, None] * _N_FACTS_PER_TOPIC + fact_pick]
    fact_text[np.arange(MAX_FACTS)[None, :] >= n_facts[:, None]] = ""
    filler_pick = np.argsort(rng.random((n, len(_FILLERS))), axis=1)[:, :max_filler]
    filler_text = np.array(_FILLERS, dtype=object)[filler_pick]
    filler_text[np.arange(max_filler)[None, :] >= n_filler[:, None]] = ""
    body = np.concatenate([fact_text, filler_text], axis=1)
    body = np.take_along_axis(body, np.argsort(rng.random(body.shape), axis=1), axis=1)

    openers = np.array([o for group in _OPENERS for o in group], dtype=object)
    opener = openers[(tone + 1) * len(_OPENERS[0]) + rng.integers(0, len(_OPENERS[0]), n)]
    closer = np.array(_CLOSERS, dtype=object)[rng.integers(0, len(_CLOSERS), n)]
    rows = np.concatenate([opener[:, None], body, closer[:, None]], axis=1)
    return np.array([" ".join(s for s in row if s) for row in rows.tolist()], dtype=object)
