"""From soft labels to the cleaned preference dataset (Hugging Face ``prompt``/``chosen``/``rejected`` layout)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from accord.datasets import AccordError, SoftLabels, table_info, weight_from_uncertainty

PAIR_TEXT_COLUMNS = ("prompt", "response_a", "response_b", "response_a_id", "response_b_id")


def build_cleaned(
    soft_labels: SoftLabels,
    judgments: pd.DataFrame,
    *,
    drop_ties: bool = False,
    min_p_chosen: float = 0.0,
) -> pd.DataFrame:
    """One row per pair: the side with the larger posterior probability becomes ``chosen``.

    ``p_chosen`` is P(chosen strictly better), ``p_tie`` P(tie); ``weight = 1 - 2 * uncertainty`` (1 when the method
    has no uncertainty). ``drop_ties`` removes pairs whose most likely outcome is a tie; ``min_p_chosen`` removes
    pairs whose chosen side is less likely than that. Per-group columns of ``soft_labels.extra`` named ``p_a_<g>``
    are turned to the chosen side's view as ``p_chosen_<g>``; other extra columns are copied as they are.
    """
    if table_info(judgments)["form"] != "preference":
        raise AccordError("a cleaned preference dataset needs preference judgments (labels A/B/tie)")
    for column in ("response_a", "response_b"):
        if column not in judgments.columns:
            raise AccordError(f"column '{column}': the cleaned dataset needs the response texts")
    present = [c for c in PAIR_TEXT_COLUMNS if c in judgments.columns]
    pairs = judgments.drop_duplicates("pair_id").set_index("pair_id")[present].reindex(soft_labels.pair_ids)
    p_a = soft_labels.p_a.to_numpy()
    p_b = soft_labels.probs["B"].to_numpy()
    p_tie = soft_labels.p_tie.to_numpy()
    a_chosen = p_a >= p_b
    out = pd.DataFrame(
        {
            "pair_id": soft_labels.pair_ids.to_numpy(),
            "prompt": pairs["prompt"].fillna("").to_numpy() if "prompt" in pairs else "",
            "chosen": np.where(a_chosen, pairs["response_a"], pairs["response_b"]),
            "rejected": np.where(a_chosen, pairs["response_b"], pairs["response_a"]),
            "p_chosen": np.where(a_chosen, p_a, p_b),
            "p_tie": p_tie,
            "uncertainty": soft_labels.uncertainty.to_numpy(),
            "weight": weight_from_uncertainty(soft_labels.uncertainty),
            "n_judgments": soft_labels.n_judgments.to_numpy(),
            "chosen_side": np.where(a_chosen, "A", "B"),
        }
    )
    if "response_a_id" in pairs and "response_b_id" in pairs:
        out["chosen_id"] = np.where(a_chosen, pairs["response_a_id"], pairs["response_b_id"])
        out["rejected_id"] = np.where(a_chosen, pairs["response_b_id"], pairs["response_a_id"])
    if soft_labels.extra is not None:
        extra = soft_labels.extra.reindex(soft_labels.pair_ids)
        for column in extra.columns:
            values = extra[column].to_numpy()
            if column.startswith("p_a_"):
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
    return out[keep].reset_index(drop=True)
