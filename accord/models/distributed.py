"""The Dawid-Skene family fitted across processes and machines with ``torch.distributed``.

VB-EM for confusion-matrix models is map-reduce shaped. With the pairs split across ``R`` processes (ranks), every
quantity an iteration needs is either local to a pair or a sum over pairs:

- E-step, local: ``q(z_i) ∝ exp(E[log pi] + sum_{(w, l) in i} E[log theta[w, :, l]])`` needs only pair ``i``'s
  judgments and the global ``q(theta)``, ``q(pi)``;
- M-step, a sum: the expected counts ``N[w, k, l] = sum_i q(z_i = k) [w gave i label l]`` and the class counts
  ``sum_i q(z_i)`` are sums of per-rank partial sums, one ``all_reduce`` each;
- the hyperparameter step (empirical prior, population Dirichlet) and the posterior draws of ``theta`` and ``pi``
  depend only on those sums, so every rank computes them identically (the same seed gives the same draws);
- convergence is the largest change of any pair's probability, an ``all_reduce`` with ``MAX``;
- the gold-free calibration (``DawidSkene``'s ``item_correlation`` and ``vote_shrinkage``) maximises a mean over
  judgments, a sum of per-rank sums evaluated for every candidate value (above its subsampling threshold a pair is
  drawn by a hash of its id, so the ranks together draw the pairs a single process draws).

So each rank holds its pairs' judgments and a copy of the rater-level state (``[W, K, L]`` Dirichlet parameters and
draws), and the result is the single-process fit up to the order of floating-point sums. Pairs are assigned by a
hash of their id (:func:`accord.datasets.stream.shard_of`), so all judgments of a pair are on one rank; annotators
and classes are numbered as a single process numbers them (first appearance in the file), agreed through one
``all_gather`` of the distinct ids.

Launch with ``torchrun`` (``gloo`` on CPU, ``NCCL`` where the model's device is a GPU); the process group comes from
the environment torchrun sets. Nothing here is a cluster of its own: :func:`init_process_group` is
``torch.distributed.init_process_group``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import torch

from accord.datasets import AccordError, Encoded, PREFERENCE_LABELS
from accord.datasets.stream import JudgmentShard, check_preference_gold, check_spaced_ids
from accord.models._vb import VBResult, vb_dawid_skene

#: the aggregation methods a sharded fit supports (closed-form VB only); the command line names them, with their
#: default inference, in accord.aggregate.methods.SHARDED_DEFAULT_INFERENCE (models never import aggregate)
SHARDED_METHODS = ("dawid-skene", "hierarchical-dawid-skene")


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: from the process group, else from torchrun's environment, else
    ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init_process_group(device: str = "cpu") -> tuple[int, int]:
    """Join the process group torchrun describes in the environment (``gloo`` for CPU tensors, ``NCCL`` for CUDA
    ones); a no-op for a single process. Returns ``(rank, world_size)``."""
    import torch.distributed as dist

    rank, size = world()
    if size > 1 and not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group(backend="cpu:gloo,cuda:nccl")
        else:
            dist.init_process_group(backend="gloo")
    return rank, size


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """The sum (or max) of ``tensor`` over ranks, the same on every rank (the tensor itself for one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return out


def _all_gather(value: Any) -> list[Any]:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def gather_to_first(value: Any) -> list[Any] | None:
    """Every rank's ``value`` on rank 0 (in rank order), None elsewhere."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [value]
    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(value, out, dst=0)
    return out


def _sorted(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def encode_shard(shard: JudgmentShard, form: str | None = None) -> tuple[Encoded, np.ndarray]:
    """The shard's :class:`~accord.datasets.Encoded` in the numbering a single process gives the whole file:
    local pairs, but annotators and classes global (annotators in order of first appearance in the file, agreed by
    one ``all_gather``). Returns it with the global number of judgments of each annotator."""
    parts = _all_gather((shard.annotator_ids.tolist(), shard.annotator_first_row, shard.label_values))
    names = pd.DataFrame({"annotator": [a for part in parts for a in part[0]],
                          "first": np.concatenate([part[1] for part in parts])})
    first = names.groupby("annotator", sort=False)["first"].min().sort_values(kind="stable")
    worker_index = pd.Index(first.index, name="annotator")
    if len(worker_index) and isinstance(worker_index[0], str):  # raters are not sharded: the same on every rank
        import pyarrow as pa

        check_spaced_ids(pa.array(worker_index.tolist()), first.to_numpy(), shard.files,
                         shard.columns.get("annotator", "annotator"))
    labels = {label for part in parts for label in part[2]}
    if form is None:
        form = "preference" if labels <= set(PREFERENCE_LABELS) else "categorical"
    if form == "preference":
        classes: tuple[Any, ...] = ("A", "B", "tie") if "tie" in labels else ("A", "B")
        check_preference_gold(shard)  # (under crowd-kit's names the labels decided the form: gold checked now)
    else:
        classes = tuple(_sorted(list(labels)))
    to_global = worker_index.get_indexer(shard.annotator_ids)
    label_codes = pd.Index(classes).get_indexer(pd.Index(shard.label_values))
    encoded = Encoded(items=shard.items, workers=to_global[shard.workers].astype(np.int64),
                      labels=label_codes[shard.labels].astype(np.int64),
                      item_index=pd.Index(shard.item_ids, name="pair_id"), worker_index=worker_index,
                      classes=classes, form=form, classes_declared=form != "categorical")  # read off the labels
    local = torch.as_tensor(np.bincount(encoded.workers, minlength=len(worker_index)), dtype=torch.float64)
    return encoded, all_reduce(local).numpy().astype(np.int64)


def vb_dawid_skene_sharded(*args: Any, **kwargs: Any) -> VBResult:
    """:func:`accord.models._vb.vb_dawid_skene` on this rank's pairs, its sums over pairs all-reduced (the same
    iteration, step for step, and the same stopping iteration on every rank)."""
    return vb_dawid_skene(*args, all_reduce=all_reduce, **kwargs)


def fit_sharded(model: Any, encoded: Encoded, worker_counts: np.ndarray, *, annotator_table: bool = True) -> Any:
    """Fit ``model`` (``DawidSkene`` or ``HierarchicalDawidSkene`` with ``inference="vb"``) on this rank's pairs
    ``encoded`` (from :func:`encode_shard`), the rater-level sums shared across ranks.

    Leaves ``soft_labels_`` for the local pairs and, on rank 0 with ``annotator_table``, ``annotators_`` for every
    annotator (its ``n_judgments`` counted over all ranks); otherwise ``annotators_`` is None. The table takes the
    raters' posterior draws (``num_samples x annotators x classes^2`` floats, the largest thing rank 0 would hold),
    so a caller that writes no table passes ``annotator_table=False``. Every other fitted attribute is the
    single-process one. With more than one process, ``partial_fit`` of the result is refused (it would refit this
    rank's pairs alone).
    """
    from accord._session import seeded
    from accord.models.dawid_skene import DawidSkene
    from accord.models.hierarchical_dawid_skene import HierarchicalDawidSkene

    if not isinstance(model, (DawidSkene, HierarchicalDawidSkene)) or model.inference != "vb":
        raise AccordError("a fit across processes supports dawid-skene and hierarchical-dawid-skene with "
                          "inference 'vb'")
    if model.init == "random":
        raise AccordError("a fit across processes starts from votes or the uniform point: init must be 'vote' or "
                          "'uniform'")
    model.encoded_ = encoded
    model._cache = {}
    model._prepare(None, encoded)
    # whether any pair of the whole input has two judgments (a rank's own pairs said it wrongly: an empty rank, or one
    # whose pairs were all judged once, warned that no pair has two, and the Dawid-Skene fit fitted its prior where
    # there are none, as the single-process fit does not)
    most = float(np.bincount(encoded.items, minlength=encoded.n_items).max(initial=0))
    overlap = float(all_reduce(torch.tensor([most], dtype=torch.float64), "max")[0]) >= 2
    if not overlap and world()[0] == 0:
        model._warn_if_no_overlap()  # RaterModel.fit's warning, once
    # the hierarchical fit fits its population only where a pair has two judgments: asked of its own pairs, a rank
    # whose pairs were all judged once kept the start while the others fitted it, and the ranks' iterations parted
    # (the fit hung in an all_reduce that the other rank never reached)
    model._no_overlap = lambda: not overlap
    try:
        with seeded(model.seed, model._torch_device):
            if isinstance(model, HierarchicalDawidSkene):
                model._fit(encoded, solve=vb_dawid_skene_sharded)
            else:
                _fit_dawid_skene(model, encoded, overlap)
            model.soft_labels_ = model._soft_labels()
    finally:
        del model._no_overlap
    # this process's pairs alone: partial_fit refuses to refit them as if they were all (a warm refit here dropped the
    # other processes' judgments of the raters, without a word)
    model._fitted_processes = world()[1]
    model.annotators_ = None
    if annotator_table and world()[0] == 0:
        table = model._annotator_table()
        table["n_judgments"] = worker_counts
        model.annotators_ = table
    return model


def _fit_dawid_skene(model: Any, encoded: Encoded, overlap: bool) -> None:
    """``DawidSkene._fit`` for ``inference="vb"``: the sharded VB-EM, then the model's own draws and calibration
    with the calibration's sums taken over every rank; ``overlap``: whether a pair of any rank has two judgments."""
    if model.empirical_prior == "full":
        raise AccordError("empirical_prior='full' cannot be fitted across processes; use True or False")
    model._check_settings(encoded)
    model._prepare_fit(encoded)
    model._k = encoded.n_classes
    model._confusion_prior = model._fixed_prior(encoded.n_classes)
    # one annotator in the whole file, or no pair of two judgments: the fixed prior, as the single-process fit keeps
    # it (it fitted one here)
    empirical = model._prior_fitted = overlap and model._fits_prior(encoded)
    vb = vb_dawid_skene_sharded(model._incidence, model._confusion_prior, model._class_prior_vec,
                                model._initial_item_probs(encoded), max_iter=model.max_steps, tol=model.tol,
                                empirical_prior=empirical, stop="distance", informative=model._informative)
    model._keep_vb(vb)
    if empirical:
        model._confusion_prior = vb.confusion_prior
    model._summarize_prior()
    model._draw_from_vb(vb)
    model._all_reduce = all_reduce
    try:
        model._finish()
    finally:
        del model._all_reduce
    model._fitted_settings = model.get_params()  # as every fit records: what partial_fit may go on from
