"""From soft labels to the cleaned preference dataset (Hugging Face ``prompt``/``chosen``/``rejected`` layout)."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from accord.datasets import AccordError, SoftLabels, validate, weight_from_uncertainty
from accord.datasets.cleaned import as_text, conversational_prompts, is_messages, item_texts, only_texts
from accord.datasets.ids import derived_pair_ids
from accord.datasets.schema import is_validated

PAIR_TEXT_COLUMNS = ("prompt", "response_a", "response_b", "response_a_id", "response_b_id")


def build_cleaned(
    soft_labels: SoftLabels,
    judgments: pd.DataFrame,
    *,
    drop_ties: bool = False,
    min_p_chosen: float = 0.0,
) -> pd.DataFrame:
    """One row per pair: the side with the larger posterior probability becomes ``chosen`` (on an exact tie, the
    side the expected strength of graded judgments leans to, else A; where the pair id was derived from the texts,
    the side first in the id's order of the two texts, whatever the order of the rows).

    ``p_chosen`` is P(chosen strictly better), ``p_tie`` P(tie); ``weight = 1 - 2 * uncertainty`` (1 when the method
    has no uncertainty). ``drop_ties`` removes pairs whose most likely outcome is a tie; ``min_p_chosen`` removes
    pairs whose chosen side is less likely than that; either is recorded in the provenance, with the number of
    pairs left out (``pairs_left_out``). Per-group columns of ``soft_labels.extra`` named ``p_a_<g>``
    are turned to the chosen side's view as ``p_chosen_<g>``; other extra columns are copied as they are.

    Graded judgments (strengths ``-S..S``, negative = A better) give a cleaned dataset too. Soft labels over the
    grades (Dawid-Skene, MACE, GLAD, the baselines) are summed to P(A better) = P(y < 0), P(tie) = P(y = 0),
    P(B better) = P(y > 0); their uncertainty is that of the most likely grade, not of this sum, so it is left
    unknown (NaN, weight 1). Either way ``margin`` is the expected strength towards the chosen side on the label
    scale (E[-y] when A is chosen, E[y] when B is; from the ordinal model's ``expected_strength``), the column
    ``accord train --loss margin`` reads (Llama 2's margin from graded preference), and the ordinal model's
    ``grade_<k>`` columns are turned to the chosen side's view (``grade_-S``: chosen much better).
    """
    if isinstance(min_p_chosen, bool) or not isinstance(min_p_chosen, numbers.Real) or not 0 <= min_p_chosen <= 1:
        raise AccordError(f"min_p_chosen must be a probability in [0, 1], got {min_p_chosen!r}")
    # read the table as the fit read it: a raw one may lack pair_id (made from the texts, with judgments shown the
    # other way round turned to the pair's orientation) or use crowd-kit's names
    judgments = judgments if is_validated(judgments) else validate(judgments)
    form = judgments.attrs["accord"]["form"]
    if form not in ("preference", "graded"):
        raise AccordError(f"a cleaned preference dataset needs preference or graded judgments, not {form} labels")
    for column in ("response_a", "response_b"):
        if column not in judgments.columns:
            raise AccordError(f"column '{column}': the cleaned dataset needs the response texts")
    pairs = item_texts(judgments, "pair_id", PAIR_TEXT_COLUMNS, "pair")  # one pair, two texts: refused
    unknown = soft_labels.pair_ids.difference(pairs.index)
    if len(unknown):
        raise AccordError(f"the soft labels have pairs the judgments do not (e.g. {unknown[0]!r}): build the "
                          "cleaned dataset from the table the method was fitted on")
    pairs = pairs.reindex(soft_labels.pair_ids)
    p_a, p_b, p_tie, strength, uncertainty = _preference_view(soft_labels)
    # probabilities, as write_cleaned checks them exactly: the sum of two grades' shares of a normalised row can be
    # 1 + 2e-16 (0.931... + 0.068...), and SoftLabels itself lets a class reach 1 + 1e-9
    p_a, p_b, p_tie = (np.clip(p, 0.0, 1.0) for p in (p_a, p_b, p_tie))
    a_chosen = _a_chosen(p_a, p_b, strength, _even_side_a(pairs, p_a == p_b))
    text_a, text_b = as_text(pairs["response_a"]), as_text(pairs["response_b"])
    out = pd.DataFrame(
        {
            "pair_id": soft_labels.pair_ids.to_numpy(),
            "prompt": as_text(pairs["prompt"], missing="") if "prompt" in pairs else "",
            "chosen": np.where(a_chosen, text_a, text_b),
            "rejected": np.where(a_chosen, text_b, text_a),
            "p_chosen": np.where(a_chosen, p_a, p_b),
            "p_tie": p_tie,
            "uncertainty": uncertainty,
            "weight": weight_from_uncertainty(uncertainty),
            "n_judgments": soft_labels.n_judgments.to_numpy(),
            "chosen_side": np.where(a_chosen, "A", "B"),
        }
    )
    if not only_texts(out["prompt"]):  # an empty list of messages is no prompt: its text was "[]"
        out["prompt"] = pd.Series([p if not _no_messages(p) else "" for p in out["prompt"]], dtype=object)
    # chat messages: the prompt is messages too (TRL's layout); a column of texts (told at C speed) holds none
    chat = not only_texts(out["chosen"]) and any(is_messages(c) for c in out["chosen"])
    if not chat and not only_texts(out["prompt"]) and any(is_messages(p) for p in out["prompt"]):
        # a prompt of messages beside text responses is neither of TRL's layouts (prompt + chosen failed): the
        # responses are the assistant's turn, as accord's trainer reads a text response after messages
        for column in ("chosen", "rejected"):
            out[column] = pd.Series([[{"role": "assistant", "content": r}] if isinstance(r, str) else r
                                     for r in out[column]], dtype=object)
        chat = True
    if chat:
        for column, values in zip(("prompt", "chosen", "rejected"),
                                  conversational_prompts(out["prompt"], out["chosen"], out["rejected"])):
            out[column] = pd.Series(values, index=out.index, dtype=object)
    if "response_a_id" in pairs and "response_b_id" in pairs:
        out["chosen_id"] = np.where(a_chosen, pairs["response_a_id"], pairs["response_b_id"])
        out["rejected_id"] = np.where(a_chosen, pairs["response_b_id"], pairs["response_a_id"])
    if strength is not None:
        out["margin"] = np.where(a_chosen, -strength, strength)
    if soft_labels.extra is not None:
        extra = soft_labels.extra.reindex(soft_labels.pair_ids)
        for column in extra.columns:
            values = extra[column].to_numpy()
            if column == "expected_strength":
                continue  # turned to the chosen side's view as ``margin``
            if column.startswith("grade_"):
                mirror = f"grade_{-int(column[len('grade_'):])}"
                out[column] = np.where(a_chosen, values, extra[mirror].to_numpy()) if mirror in extra else values
            elif column.startswith("p_a_"):
                group = column[len("p_a_"):]
                b_column = f"p_b_{group}"
                p_b_group = extra[b_column].to_numpy() if b_column in extra else 1.0 - values
                out[f"p_chosen_{group}"] = np.where(a_chosen, values, p_b_group)
            elif not column.startswith("p_b_"):
                out[column] = values
    out.attrs["provenance"] = {k: v for k, v in (("method", soft_labels.method),
                                                  ("source", judgments.attrs.get("source"))) if v is not None}
    keep = np.ones(len(out), dtype=bool)
    if drop_ties:
        keep &= ~((p_tie > p_a) & (p_tie > p_b))
    if min_p_chosen > 0:
        keep &= out["p_chosen"].to_numpy() >= min_p_chosen
    if drop_ties or min_p_chosen > 0:  # recorded with the file: else it could not be told from one of every pair
        out.attrs["provenance"].update({**({"drop_ties": True} if drop_ties else {}),
                                        **({"min_p_chosen": float(min_p_chosen)} if min_p_chosen > 0 else {}),
                                        "pairs_left_out": int((~keep).sum())})
    return out[keep].reset_index(drop=True)


def _a_chosen(p_a: np.ndarray, p_b: np.ndarray, strength: np.ndarray | None, even_a: np.ndarray) -> np.ndarray:
    """Whether A is the chosen side: the more likely side; on an exact tie of P(A) and P(B) (votes -1 and +2), the
    side the expected strength leans to, so that ``margin`` is not negative where the grades favour B; else A where
    ``even_a`` says so (:func:`_even_side_a`)."""
    if strength is None:
        return (p_a > p_b) | ((p_a == p_b) & even_a)
    return (p_a > p_b) | ((p_a == p_b) & ((strength < 0) | (~(strength > 0) & even_a)))


def _even_side_a(pairs: pd.DataFrame, even: np.ndarray) -> np.ndarray:
    """Whether A is chosen where nothing else decides (``even``: P(A) == P(B)): A, the side the table gives, unless
    the pair's id is the one accord derives from its texts, whose A is the side its first row showed first (the same
    judgments in another row order gave the other response as chosen); there the side that comes first in the id's
    own order of the two texts (:func:`~accord.datasets.ids.derived_pair_ids`)."""
    side_a = np.ones(len(pairs), dtype=bool)
    if not even.any() or "response_a" not in pairs or "response_b" not in pairs:
        return side_a
    ids, a_first = derived_pair_ids(pairs.reset_index(drop=True))
    derived = ids.to_numpy() == np.asarray(pairs.index, dtype=object)
    return np.where(derived, a_first, side_a)


def _preference_view(soft_labels: SoftLabels) -> tuple[np.ndarray, ...]:
    """P(A better), P(B better), P(tie), the expected strength E[y] (``None`` without grades) and the uncertainty
    of the soft labels, whether their classes are A/B[/tie] or the grades of a graded scale."""
    classes = soft_labels.classes
    extra = soft_labels.extra.reindex(soft_labels.pair_ids) if soft_labels.extra is not None else None
    expected = extra.get("expected_strength") if extra is not None else None
    if {"A", "B"} <= set(classes) and set(classes) <= {"A", "B", "tie"}:
        return (soft_labels.p_a.to_numpy(), soft_labels.probs["B"].to_numpy(), soft_labels.p_tie.to_numpy(),
                None if expected is None else expected.to_numpy(dtype=float), soft_labels.uncertainty.to_numpy())
    if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes):
        raise AccordError(f"a cleaned preference dataset needs soft labels over A/B[/tie] or graded strengths; "
                          f"method {soft_labels.method!r} gave classes {classes}")
    grades = np.asarray(classes, dtype=float)
    probs = soft_labels.probs.to_numpy(dtype=float)
    return (probs[:, grades < 0].sum(axis=1), probs[:, grades > 0].sum(axis=1), probs[:, grades == 0].sum(axis=1),
            probs @ grades, np.full(len(probs), np.nan))


def _no_messages(value: object) -> bool:
    """An empty list of chat messages (or the empty numpy array Parquet reads): a prompt that says nothing."""
    return isinstance(value, (list, tuple, np.ndarray)) and len(value) == 0
