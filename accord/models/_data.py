"""Judgments as dense padded tensors, the layout Pyro's enumeration needs.

A flat judgments plate that indexes an enumerated label does not broadcast; the models instead see an
``[n_items, max_judgments]`` grid of annotator and label codes with a mask, built here without Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from accord.datasets import AccordError, Encoded, encode
from accord.datasets.schema import is_validated


@dataclass(frozen=True)
class PaddedJudgments:
    """``workers[i, m]`` and ``labels[i, m]`` of the m-th judgment of item ``i``; ``mask`` marks real entries."""

    workers: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor
    n_items: int
    n_workers: int
    n_classes: int

    @property
    def max_judgments(self) -> int:
        return int(self.labels.shape[1])

    def to(self, device: torch.device | str) -> "PaddedJudgments":
        return replace(self, workers=self.workers.to(device), labels=self.labels.to(device), mask=self.mask.to(device))


def pad_judgments(encoded: Encoded) -> PaddedJudgments:
    """Lay the judgments of each item side by side in one row of a padded grid."""
    order = np.argsort(encoded.items, kind="stable")
    items = encoded.items[order]
    counts = np.bincount(items, minlength=encoded.n_items)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(items)) - starts[items]
    width = max(int(counts.max()), 1)
    workers = np.zeros((encoded.n_items, width), dtype=np.int64)
    labels = np.zeros((encoded.n_items, width), dtype=np.int64)
    mask = np.zeros((encoded.n_items, width), dtype=bool)
    workers[items, slot] = encoded.workers[order]
    labels[items, slot] = encoded.labels[order]
    mask[items, slot] = True
    return PaddedJudgments(workers=torch.from_numpy(workers), labels=torch.from_numpy(labels),
                           mask=torch.from_numpy(mask), n_items=encoded.n_items,
                           n_workers=encoded.n_workers, n_classes=encoded.n_classes)


def encode_with_classes(judgments: pd.DataFrame, classes: tuple[Any, ...] | list[Any] | None) -> Encoded:
    """:func:`accord.datasets.encode`, with the label codes laid on a given class tuple (a superset of the table's).

    Held-out evaluation needs it: a training fold may lack a class (e.g. no tie) that its test fold has.
    """
    encoded = encode(judgments)
    if classes is None or tuple(encoded.classes) == tuple(classes):
        return encoded
    classes = tuple(classes)
    codes = pd.Index(list(classes)).get_indexer(list(encoded.classes))
    if (codes < 0).any():
        missing = [c for c, code in zip(encoded.classes, codes) if code < 0]
        raise AccordError(f"classes {missing} of the judgments are not among the declared classes {list(classes)}")
    return replace(encoded, labels=codes[encoded.labels].astype(np.int64), classes=classes)


def shared_classes(*tables: pd.DataFrame) -> tuple[Any, ...]:
    """The class tuple :func:`encode` gives the union of several judgments tables of one form."""
    attrs = next((t.attrs for t in tables if is_validated(t)), None)
    joined = pd.concat(tables, ignore_index=True)
    if attrs is not None:
        joined.attrs = dict(attrs)
    return tuple(encode(joined).classes)


def with_attrs(table: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """``table`` carrying ``like``'s validation record (so it is not validated again)."""
    table = table.reset_index(drop=True)
    table.attrs = dict(like.attrs)
    return table


def id_order(table: pd.DataFrame) -> np.ndarray:
    """Positions of ``table``'s rows sorted by annotator, then pair id (each column holds one kind of id, so its
    values sort): the order in which a random split draws judgments, so that the split follows the judgments and
    not the order of their rows (rows of one annotator and pair keep their order)."""
    return np.lexsort([pd.factorize(table[column], sort=True)[0] for column in ("pair_id", "annotator")])


def id_ranks(index: pd.Index) -> np.ndarray:
    """``[n]``: the place of each code's id among the ids sorted (``index`` holds one kind of id, so its values sort).
    A model that draws per annotator or per pair draws in this order and maps the draws back to the codes, which
    follow the rows' order (:func:`in_id_order`)."""
    return pd.factorize(index, sort=True)[0].astype(np.int64)


def sorted_ranks(index: pd.Index) -> np.ndarray:
    """:func:`id_ranks` of ids that may not sort among themselves (response ids of mixed types: a missing id falls
    back to a text one): ranked by their text then, ties kept in code order."""
    try:
        return id_ranks(index)
    except TypeError:
        ranks = np.empty(len(index), dtype=np.int64)
        ranks[np.argsort(np.asarray(index.astype(str)), kind="stable")] = np.arange(len(index))
        return ranks


def in_id_order(encoded: Encoded) -> tuple[Encoded, np.ndarray, np.ndarray]:
    """``(encoded with its pairs and annotators numbered in id order and its judgments sorted by pair, annotator and
    label; the new code of each pair code; of each annotator code)``: the same judgments as a set, whatever the order
    of their rows, so that what is drawn over them follows the judgments and the seed alone."""
    items, workers = id_ranks(encoded.item_index), id_ranks(encoded.worker_index)
    new_items, new_workers = items[encoded.items], workers[encoded.workers]
    order = np.lexsort([encoded.labels, new_workers, new_items])
    ordered = replace(encoded, items=new_items[order], workers=new_workers[order], labels=encoded.labels[order],
                      item_index=encoded.item_index[np.argsort(items)],
                      worker_index=encoded.worker_index[np.argsort(workers)])
    return ordered, items, workers


def vote_fractions(encoded: Encoded, smoothing: float) -> np.ndarray:
    """``[n_items, n_classes]`` smoothed vote fractions, ``(votes + smoothing) / (n + K * smoothing)``: the starting
    posterior of the closed-form fits (smoothing keeps every class possible, so no class is ruled out on one vote)."""
    counts = encoded.vote_counts() + smoothing
    return counts / counts.sum(axis=1, keepdims=True)
