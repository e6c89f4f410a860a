"""Best-of-n against reward models trained on biased raters' labels: does the true utility of the chosen response
keep rising with n, or does the policy buy length (reward over-optimisation, Gao et al. 2023)?

Data: :func:`accord.datasets.synthetic.make_synthetic` with text, ``--biased-share`` (default 25%) length-biased
raters (their log-odds of A move by ``beta_j`` in 0.3..1.5 per sentence of length difference), 10% spammers, the
rest reliable, 5 judgments per pair; and the same with no biased raters (their share reliable). A seeded 20% of the
prompts is held out; reward models never see them. Responses carry up to ``--max-filler`` (default 5) vague filler
sentences, so length is uninformative of utility (correlation about 0.04) and a lean towards length is bias alone;
``--max-filler 2``, the generator's default, makes length a strong cue of utility (correlation about 0.6), where
labels that keep the raters' lean towards length can buy utility.

Reward models, trained on the training prompts' pairs only, all MiniLM (all-MiniLM-L6-v2, mean pooling) through
:class:`accord.reward.RewardTrainer` with the same steps, batch, learning rate and seed:

* **(a) majority**: majority-vote labels, undecided pairs dropped, hard Bradley-Terry loss (TRL's recipe);
* **(b) soft**: crowd Bradley-Terry soft labels (``bradley-terry``), accord's weighted soft loss;
* **(c) debiased**: :class:`~accord.models.DebiasedBradleyTerry` soft labels with ``covariates=("length",)`` (the
  same model as (b) plus the raters' pulls; the labels are the typical rater's without them), the same loss;
* **(d) debiased + ensemble**: ``--members`` reward models on the labels of (c) with different seeds (head
  initialisation and data order), scored with the conservative reward ``--conservative`` (default ``mean - k sd``,
  :mod:`accord.reward.ensemble`; members standardised by their training-set reward statistics);
* **(e) debiased + heads** (with ``--heads H``): one reward model on the labels of (c) with ``H`` ensemble heads on
  its one backbone (``RewardConfig.ensemble_heads``: each head its own initialisation and Poisson(1) bootstrap of
  the pairs), its heads scored with the same conservative reward as (d)'s members: the cheap ensemble beside the
  separately trained one.

Best-of-n on each held-out prompt: ``--candidates`` (256) fresh responses with known utility from
:meth:`SyntheticData.sample_candidates`; for n = 1, 2, 4, ..., 256 the expected true utility of the candidate with
the highest proxy reward among n drawn without replacement, computed exactly from the ranks
(:func:`accord.reward.best_of_n.best_of_n_expectation`), mean over prompts; against n and against the KL of
best-of-n from the sampling distribution, ``log n - (n - 1) / n``.

Standard errors are between seeds (:func:`clustered`): the held-out prompts of one seed share its data, its labels
and its trained reward models, so their curves move together and are not independent units; the seed (one
reward-model training replicate) is. Each SE is the cluster-robust (CR1) standard error of the mean over every
(seed, prompt) with the seed as the cluster - with the same number of prompts per seed, the standard deviation of the
per-seed means divided by the square root of the number of seeds - chosen over a cluster bootstrap because it is
exact arithmetic on a handful of seeds (a bootstrap over five clusters has at most 126 distinct resamples). Few
seeds give wide SEs; that is the honest answer. With one seed no between-seed SE exists and none is printed (the
spread over one seed's prompts says nothing about another training run). Differences are paired: the difference of
two methods per (seed, prompt) on the same candidates, clustered the same way. After each setting's table: (d) - (a)
at n = 64 and (c) - (b) at n = 64 and 256 (with biased raters); for each method the n where its mean curve is
highest (in-sample, a description) and its fall from the peak to the last n, cross-fitted over seeds
(:func:`cross_fitted_fall`): for each seed the peak n is chosen on the other seeds' mean curve and the fall is the
paired difference of the last n and that n on this seed's prompts, so the choice never sees the curves the fall is
measured on (a split of a seed's prompts would not do: its two halves share one reward model); and without biased
raters (d) - (a) at every n.

CPU-sized by default: the backbone is frozen entirely (``--freeze-layers 6``: only the linear head trains), so
MiniLM's pooled embedding of a text is a function of its tokens alone. Each is computed once per run
(:class:`PooledCache`) and shared by every reward model: the trainer (:class:`accord.reward.RewardTrainer`, its own
seeding, batches, loss, optimiser and schedule) trains each model's head on the cached embeddings, and candidates
are scored by each head on theirs. The saved models are ordinary reward models, and for every model the cached
rewards of a sample of candidates are checked against :func:`accord.reward.score`. ``--full`` (a GPU) trains the
whole backbone and scores every model through ``score``.

Seeds may run in separate processes, each writing its curves (``--curves``, rewritten after every seed, so a
stopped run keeps the seeds it finished), and be summarised together (``--from-curves``).

    python benchmarks/overoptimization.py --seeds 0 --pairs 300 --prompts 4 --candidates 16 --steps 5 --members 2
    python benchmarks/overoptimization.py --seeds 0,1,2,3,4 --png overopt.png      # the reported run, one process
    python benchmarks/overoptimization.py --seeds 0,2,4 --curves a.parquet         # or in two processes ...
    python benchmarks/overoptimization.py --seeds 1,3 --curves b.parquet
    python benchmarks/overoptimization.py --from-curves a.parquet,b.parquet --png overopt.png   # ... and together
    python benchmarks/overoptimization.py --full --seeds 0,1,2,3,4                 # GPU: whole backbone trained
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

METHODS = ("a majority", "b soft", "c debiased", "d debiased+ensemble")
HEADS_METHOD = "e debiased+heads"  # with --heads
JUDGMENTS_PER_PAIR = 5


class PooledCache:
    """MiniLM's pooled embedding of every token sequence, computed once: with the backbone frozen entirely (and
    dropout off, as the trainer sets it) it is a function of the token ids alone, so the reward models of a run -
    every method, member and seed - share it, and each trains and scores only its linear head on it."""

    def __init__(self, backbone: str, batch_size: int = 64):
        from accord.reward.data import PairCollator
        from accord.reward.model import RewardModel

        self.model = RewardModel.from_backbone(backbone).eval()
        self.collator = PairCollator(0, packing=True, pooling=self.model.pooling, hidden_size=self.model.hidden_size)
        self.batch_size = batch_size
        self.vectors: dict[bytes, Any] = {}
        self.computed = 0

    def pooled(self, seqs: list[list[int]], types: list[list[int]] | None = None) -> Any:
        """``(len(seqs), hidden)`` pooled embeddings (a float32 tensor) of token sequences (and their token type
        ids, which a BERT-style encoder reads), computing those not yet seen."""
        import torch

        from accord.reward.task import model_inputs

        types = types if types is not None else [[0] * len(s) for s in seqs]
        keys = [np.asarray([s, t], dtype=np.int64).tobytes() for s, t in zip(seqs, types)]
        todo = {key: (s, t) for key, s, t in zip(keys, seqs, types) if key not in self.vectors}
        if todo:
            new_keys = sorted(todo, key=lambda key: -len(todo[key][0]))  # similar lengths together
            captured: list[torch.Tensor] = []
            hook = self.model.head.register_forward_pre_hook(lambda _, x: captured.append(x[0].detach().clone()))
            try:
                with torch.no_grad():
                    for start in range(0, len(new_keys), self.batch_size):
                        chunk = [todo[key] for key in new_keys[start:start + self.batch_size]]
                        batch = self.collator.sequences([s for s, _ in chunk], [t for _, t in chunk])
                        self.model(**model_inputs(batch))
            finally:
                hook.remove()
            self.vectors.update(zip(new_keys, torch.cat(captured)))
            self.computed += len(new_keys)
        return torch.stack([self.vectors[key] for key in keys])


def cached_model_class(cache: PooledCache) -> type:
    """A :class:`RewardModel` whose forward reads the pooled embeddings from ``cache`` (any collated layout: padded
    or packed rows) and applies its own head; saved, it is an ordinary reward model (the frozen backbone and the
    trained head), so :func:`accord.reward.score` scores it the long way."""
    import torch

    from accord.reward.model import RewardModel, RewardOutput

    class CachedPoolingRewardModel(RewardModel):
        def forward(self, input_ids: torch.Tensor, pool_index: torch.Tensor, token_seq: torch.Tensor | None = None,
                    token_type_ids: torch.Tensor | None = None, dense_mask: torch.Tensor | None = None,
                    **_: Any) -> RewardOutput:
            if token_seq is None or dense_mask is not None or self.uncertainty_head or self.num_outputs != 1:
                raise SystemExit("cached embeddings need mean pooling over whole sequences and one reward output")
            keep = token_seq >= 0
            seq = token_seq[keep]
            order = torch.argsort(seq, stable=True)  # each sequence's tokens in their order
            ids = input_ids.reshape(-1)[keep][order].tolist()
            types = None if token_type_ids is None else token_type_ids.reshape(-1)[keep][order].tolist()
            bounds = np.cumsum([0] + torch.bincount(seq, minlength=len(pool_index)).tolist())
            spans = [slice(bounds[k], bounds[k + 1]) for k in range(len(pool_index))]
            pooled = cache.pooled([ids[span] for span in spans], None if types is None else [types[s] for s in spans])
            out = self.head(pooled.to(self.head.weight.device))
            if self.ensemble_heads > 1:
                return RewardOutput(reward=out.mean(dim=-1), members=out)
            return RewardOutput(reward=out[:, 0])

    return CachedPoolingRewardModel


def embed_candidates(cache: PooledCache, model_dir: str, frame: pd.DataFrame) -> np.ndarray:
    """The pooled embeddings of candidates (``prompt``, ``text``), tokenized as :func:`accord.reward.score` does."""
    from accord.reward.evaluate import _encoder, load_model

    model, tokenizer = load_model(model_dir, "cpu")
    encoded = _encoder(model, tokenizer, None).encode(list(frame["prompt"]), list(frame["text"]))
    return cache.pooled(encoded.ids, encoded.type_ids).numpy()


def head_rewards(model_dir: str, pooled: np.ndarray) -> np.ndarray:
    """The model's reward from pooled embeddings, standardised by its training-set statistics."""
    import json

    from safetensors.numpy import load_file

    from accord.reward.model import HEAD_FILE, STATS_FILE

    head = load_file(str(Path(model_dir) / HEAD_FILE))
    reward = pooled @ head["weight"][0] + head["bias"][0]
    stats = json.loads((Path(model_dir) / STATS_FILE).read_text())
    return (reward - stats["mean"]) / stats["sd"]


def ensemble_head_rewards(model_dir: str, pooled: np.ndarray) -> np.ndarray:
    """``(H, n)``: each ensemble head's reward from pooled embeddings, standardised by its own training-set
    statistics (as :func:`accord.reward.ensemble.head_rewards` does the long way)."""
    import json

    from safetensors.numpy import load_file

    from accord.reward.model import HEAD_FILE, STATS_FILE

    head = load_file(str(Path(model_dir) / HEAD_FILE))
    reward = head["weight"] @ pooled.T + head["bias"][:, None]
    stats = json.loads((Path(model_dir) / STATS_FILE).read_text())["heads"]
    return (reward - np.array([h["mean"] for h in stats])[:, None]) / np.array([h["sd"] for h in stats])[:, None]


def train_model(frame: pd.DataFrame, name: str, loss: str, seed: int, args: argparse.Namespace, backbone: str,
                work_dir: Path, cache: PooledCache | None, heads: int | None = None) -> str:
    from accord.datasets import write_cleaned
    from accord.reward import RewardConfig, RewardTrainer
    from accord.reward.trainer import seed_everything

    path = write_cleaned(frame, work_dir / f"{name}.parquet", provenance={"source": f"synthetic seed {seed}"})
    config = RewardConfig(model=backbone, train_path=str(path), output_dir=str(work_dir / name), loss=loss,
                          max_steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
                          learning_rate=args.learning_rate, warmup_ratio=0.1, seed=seed, save_steps=None,
                          logging_steps=50, stats_max_pairs=256,
                          freeze_layers=0 if args.full else args.freeze_layers, progress=False,
                          ensemble_heads=heads)
    model = None
    if cache is not None:  # the trainer's own model set-up (seed, then backbone and head), reading the cache
        seed_everything(seed)
        model = cached_model_class(cache).from_backbone(backbone, ensemble_heads=heads or 1,
                                                        head_seed=seed if heads else None)
    return str(RewardTrainer(config, model=model).train().output_dir)


def run_seed(seed: int, share: float, args: argparse.Namespace, backbone: str, work_dir: Path,
             cache: PooledCache | None) -> dict[str, Any]:
    from accord.aggregate import build_cleaned, fit_method
    from accord.datasets.synthetic import make_synthetic
    from accord.reward import score
    from accord.reward.best_of_n import best_of_n_expectation
    from accord.reward.ensemble import conservative_reward
    from accord.reward.ensemble import head_rewards as head_rewards_scored

    mix = {"reliable": 0.9 - share, "spammer": 0.1, "length_biased": share}
    data = make_synthetic(n_pairs=args.pairs, n_annotators=args.annotators, judgments_per_pair=JUDGMENTS_PER_PAIR,
                          annotator_mix={k: v for k, v in mix.items() if v > 0}, max_filler=args.max_filler,
                          with_text=True, seed=seed)
    held_out = data.held_out_prompts(0.2, seed)
    train_ids = set(held_out.index[~held_out.to_numpy()])
    judgments = data.judgments[data.judgments["pair_id"].isin(train_ids)].reset_index(drop=True)
    started = time.perf_counter()
    majority = build_cleaned(fit_method("majority", judgments).soft_labels_, judgments)
    labels = {"a": (majority[majority["p_chosen"] > 0.5].reset_index(drop=True), "bradley_terry"),
              "b": (build_cleaned(fit_method("bradley-terry", judgments, seed=seed).soft_labels_, judgments),
                    "weighted_soft_bce"),
              "c": (build_cleaned(fit_method("debiased-bradley-terry", judgments, seed=seed).soft_labels_,
                                  judgments), "weighted_soft_bce")}
    fit_seconds = time.perf_counter() - started
    tag = f"s{seed}-b{int(share * 100)}"
    started = time.perf_counter()
    dirs = {key: train_model(frame, f"{tag}-{key}", loss, seed, args, backbone, work_dir, cache)
            for key, (frame, loss) in labels.items()}
    members = [dirs["c"]] + [train_model(labels["c"][0], f"{tag}-c{m}", "weighted_soft_bce", seed + 1000 * m, args,
                                         backbone, work_dir, cache) for m in range(1, args.members)]
    if args.heads:
        dirs["e"] = train_model(labels["c"][0], f"{tag}-e", "weighted_soft_bce", seed, args, backbone, work_dir, cache,
                                heads=args.heads)
    train_seconds = time.perf_counter() - started

    started = time.perf_counter()
    pair_prompt = data.responses["prompt_id"].reindex(
        data.judgments.drop_duplicates("pair_id").set_index("pair_id")["response_a_id"].reindex(held_out.index))
    test_prompts = pd.unique(pair_prompt[held_out.to_numpy()])[: args.prompts]
    candidates = data.sample_candidates(list(test_prompts), args.candidates, seed=seed)
    every = list(dict.fromkeys([dirs["a"], dirs["b"], *members]))
    head_members = None
    if cache is None:
        rewards = {d: score(d, candidates.rename(columns={"text": "response"}))["reward_normalised"].to_numpy()
                   for d in every}
        if args.heads:
            head_members = head_rewards_scored(dirs["e"], candidates.rename(columns={"text": "response"}))
    else:
        pooled = embed_candidates(cache, dirs["a"], candidates)
        rewards = {d: head_rewards(d, pooled) for d in every}
        if args.heads:
            head_members = ensemble_head_rewards(dirs["e"], pooled)
            sample = candidates.iloc[:: max(1, len(candidates) // 48)]
            direct = head_rewards_scored(dirs["e"], sample.rename(columns={"text": "response"}))
            gap = float(np.abs(direct - head_members[:, sample.index.to_numpy()]).max())
            if gap > 1e-3:
                raise SystemExit(f"cached embeddings disagree with the heads' own scoring by {gap:.2e}")
        sample = candidates.iloc[:: max(1, len(candidates) // 48)]
        for d in every:  # the cached path equals the saved reward model's own scoring
            direct = score(d, sample.rename(columns={"text": "response"}))["reward_normalised"].to_numpy()
            gap = float(np.abs(direct - rewards[d][sample.index.to_numpy()]).max())
            if gap > 1e-3:
                raise SystemExit(f"cached embeddings disagree with score() for {d} by {gap:.2e}: is the backbone "
                                 "frozen entirely?")
    score_seconds = time.perf_counter() - started
    proxy = {"a majority": rewards[dirs["a"]], "b soft": rewards[dirs["b"]], "c debiased": rewards[dirs["c"]],
             "d debiased+ensemble": conservative_reward(np.stack([rewards[d] for d in members]), args.conservative,
                                                        args.k)}
    if head_members is not None:
        proxy[HEADS_METHOD] = conservative_reward(head_members, args.conservative, args.k)
    ns = [2**i for i in range(int(math.log2(args.candidates)) + 1)]
    utility = candidates["utility"].to_numpy()
    length = candidates["length"].to_numpy()
    prompt_codes = candidates["prompt_id"].to_numpy()
    curves = {m: [] for m in proxy}
    lengths = {m: [] for m in proxy}
    for prompt in test_prompts:
        rows = prompt_codes == prompt
        for m in proxy:
            curves[m].append(best_of_n_expectation(proxy[m][rows], utility[rows], ns))
            lengths[m].append(best_of_n_expectation(proxy[m][rows], length[rows].astype(float), ns))
    print(f"  seed {seed}, biased share {share:.0%}: {len(train_ids):,} training pairs, {len(test_prompts)} held-out "
          f"prompts x {args.candidates} candidates; labels {fit_seconds:.0f}s, reward models {train_seconds:.0f}s, "
          f"scoring {score_seconds:.0f}s", flush=True)
    return {"seed": seed, "ns": ns, "utility": {m: np.array(v) for m, v in curves.items()},
            "length": {m: np.array(v) for m, v in lengths.items()}}


def curves_frame(results: list[dict[str, Any]], share: float) -> pd.DataFrame:
    """The per-(seed, prompt) curves as one long table (what ``--curves`` writes and ``--from-curves`` reads)."""
    rows = []
    for r in results:
        for m in r["utility"]:
            for name in ("utility", "length"):
                values = r[name][m]
                unit, j = np.meshgrid(np.arange(values.shape[0]), np.arange(values.shape[1]), indexing="ij")
                rows.append(pd.DataFrame({"biased share": share, "seed": r["seed"], "prompt": unit.ravel(),
                                          "method": m, "n": np.asarray(r["ns"])[j.ravel()], "quantity": name,
                                          "value": values.ravel()}))
    return pd.concat(rows, ignore_index=True)


def results_from_curves(frame: pd.DataFrame) -> dict[float, list[dict[str, Any]]]:
    """``--curves`` tables back into the per-seed results, by biased share (seeds in order)."""
    out: dict[float, list[dict[str, Any]]] = {}
    for (share, seed), part in frame.groupby(["biased share", "seed"], sort=False):
        ns = sorted(part["n"].unique().tolist())
        result: dict[str, Any] = {"seed": seed, "ns": ns, "utility": {}, "length": {}}
        for (name, m), rows in part.groupby(["quantity", "method"]):
            result[name][m] = rows.pivot(index="prompt", columns="n", values="value")[ns].to_numpy()
        out.setdefault(float(share), []).append(result)
    return {share: sorted(results, key=lambda r: r["seed"]) for share, results in out.items()}


def clustered(per_seed: Sequence[np.ndarray]) -> tuple[float, float]:
    """The mean of a quantity over every (seed, prompt) and its standard error with the seed as the unit of
    independence: the CR1 cluster-robust SE of the mean, ``sqrt(G / (G - 1) * sum_g (sum_i (x_gi - mean))^2) / N``
    over ``G`` seeds and ``N`` units, which with the same number of prompts per seed is the standard deviation of
    the per-seed means over the square root of ``G``. ``per_seed`` holds one array of per-prompt values per seed.
    The SE is NaN with one seed: its prompts share one reward model, and their spread is not a between-seed one."""
    values = [np.asarray(v, dtype=float).ravel() for v in per_seed]
    if not values or any(v.size == 0 for v in values):
        raise ValueError("clustered: every seed needs at least one prompt's value")
    units = np.concatenate(values)
    mean = float(units.mean())
    if len(values) < 2:
        return mean, math.nan
    sums = np.array([np.sum(v - mean) for v in values])
    return mean, float(math.sqrt(len(values) / (len(values) - 1) * np.sum(sums**2)) / units.size)


def cross_fitted_fall(per_seed: Sequence[np.ndarray]) -> tuple[list[int], float, float] | None:
    """A method's fall from its peak to the last n, with the peak chosen on other curves than those measured:
    ``per_seed`` holds each seed's ``(prompt, n)`` curves; for each seed the peak is the index of the highest mean
    over the other seeds' prompts, and the fall is the last n minus that n on this seed's prompts. Returns each
    seed's peak index and the falls' mean and between-seed SE (:func:`clustered`); None with one seed (no other
    seed to choose its peak on). Choosing the peak on the curves a fall is measured on makes every noise bump a
    peak and reports a fall where the curve is flat."""
    curves = [np.asarray(c, dtype=float) for c in per_seed]
    if len(curves) < 2:
        return None
    peaks, falls = [], []
    for s, own in enumerate(curves):
        others = np.concatenate([c for t, c in enumerate(curves) if t != s])
        peak = int(np.argmax(others.mean(axis=0)))
        peaks.append(peak)
        falls.append(own[:, -1] - own[:, peak])
    return (peaks, *clustered(falls))


def summarise(results: list[dict[str, Any]], share: float) -> pd.DataFrame:
    from accord.reward.best_of_n import best_of_n_kl

    ns = results[0]["ns"]
    rows = []
    for m in results[0]["utility"]:
        for j, n in enumerate(ns):
            utility, se = clustered([r["utility"][m][:, j] for r in results])
            diff, paired_se = paired(results, m, j, METHODS[0], j)
            rows.append({"biased share": share, "method": m, "n": n, "KL": best_of_n_kl(n), "utility": utility,
                         "SE": se, "minus (a)": diff, "paired SE": paired_se,
                         "length": clustered([r["length"][m][:, j] for r in results])[0]})
    return pd.DataFrame(rows)


def paired(results: list[dict[str, Any]], m1: str, j1: int, m2: str, j2: int) -> tuple[float, float]:
    """Mean over (seed, prompt) of ``m1`` at the ``j1``-th n minus ``m2`` at the ``j2``-th n, and its standard
    error between seeds (:func:`clustered`)."""
    return clustered([r["utility"][m1][:, j1] - r["utility"][m2][:, j2] for r in results])


def checks(results: list[dict[str, Any]], share: float) -> list[str]:
    """The comparisons the benchmark exists for, each as a difference with its paired standard error between
    seeds."""
    ns = results[0]["ns"]

    def fmt(mean: float, se: float) -> str:
        if math.isnan(se):
            return f"{mean:+.4f} (no SE: one seed)"
        if se < 1e-9:  # the same choices on every prompt
            return f"{mean:+.4f} (paired SE 0)"
        return f"{mean:+.4f} (paired SE {se:.4f}, {mean / se:+.2f} SE)"

    lines = []
    if share > 0:
        j = ns.index(64) if 64 in ns else len(ns) - 1
        lines.append(f"n = {ns[j]}: (d) - (a) {fmt(*paired(results, METHODS[3], j, METHODS[0], j))}")
        for jj in sorted({j, len(ns) - 1}):
            lines.append(f"n = {ns[jj]}: (c) - (b) {fmt(*paired(results, METHODS[2], jj, METHODS[1], jj))}")
    if HEADS_METHOD in results[0]["utility"]:
        for jj in sorted({ns.index(64) if 64 in ns else len(ns) - 1, len(ns) - 1}):
            lines.append(f"n = {ns[jj]}: (e) - (a) {fmt(*paired(results, HEADS_METHOD, jj, METHODS[0], jj))}; "
                         f"(e) - (d) {fmt(*paired(results, HEADS_METHOD, jj, METHODS[3], jj))}")
    for m in results[0]["utility"]:
        curve = np.concatenate([r["utility"][m] for r in results]).mean(axis=0)
        top = int(np.argmax(curve))
        text = f"{m}: highest mean at n = {ns[top]} ({curve[top]:+.4f}); n = {ns[-1]} minus the other seeds' peak"
        fall = cross_fitted_fall([r["utility"][m] for r in results])
        if fall is None:
            lines.append(text + ": n/a (one seed)")
            continue
        peaks, mean, se = fall
        chosen = ", ".join(f"{r['seed']}: {ns[p]}" for r, p in zip(results, peaks))
        lines.append(text + f" (seed: peak n {chosen}) {fmt(mean, se)}")
    if share == 0:
        def short(mean: float, se: float) -> str:
            if math.isnan(se):
                return f"{mean:+.4f} (no SE)"
            return f"{mean:+.4f} ({f'{mean / se:+.2f} SE' if se >= 1e-9 else 'paired SE 0'})"

        lines.append("(d) - (a) at every n: " + "; ".join(
            f"n = {n}: {short(*paired(results, METHODS[3], j, METHODS[0], j))}" for j, n in enumerate(ns)))
    return lines


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = sorted(table["biased share"].unique(), reverse=True)
    fig, axes = plt.subplots(1, len(shares), figsize=(6 * len(shares), 4.2), squeeze=False)
    for ax, share in zip(axes[0], shares):
        part = table[table["biased share"] == share]
        for m in part["method"].unique():
            rows = part[part["method"] == m]
            ax.plot(rows["KL"], rows["utility"], marker="o", ms=3, label=m)
            ax.fill_between(rows["KL"], rows["utility"] - rows["SE"], rows["utility"] + rows["SE"], alpha=0.2)
        top = ax.secondary_xaxis("top", functions=(lambda x: x, lambda x: x))
        kl = part.drop_duplicates("n")
        top.set_xticks(kl["KL"].to_numpy()[::2], [str(n) for n in kl["n"].to_numpy()[::2]])
        top.set_xlabel("n (best-of-n)")
        ax.set_xlabel("KL = log n - (n - 1)/n (nats)")
        ax.set_ylabel("true utility of the chosen response")
        ax.set_title(f"{share:.0%} length-biased raters")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    from accord.datasets.io import atomic_path

    with atomic_path(path) as tmp:  # a stopped run leaves no half-written figure
        fig.savefig(tmp, dpi=120, format="png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--biased-share", type=float, default=0.25)
    parser.add_argument("--no-unbiased", action="store_true", help="skip the run without biased raters")
    parser.add_argument("--pairs", type=int, default=2400, help="pairs generated per seed (20%% of prompts held out)")
    parser.add_argument("--annotators", type=int, default=60)
    parser.add_argument("--max-filler", type=int, default=5,
                        help="most filler sentences per response: 5 makes length uninformative of utility, the "
                        "generator's default 2 a strong cue of it")
    parser.add_argument("--prompts", type=int, default=40, help="held-out prompts used for best-of-n")
    parser.add_argument("--candidates", type=int, default=256, help="candidates per prompt (a power of 2)")
    parser.add_argument("--members", type=int, default=3, help="reward models in the ensemble of (d)")
    parser.add_argument("--heads", type=int, default=0,
                        help="add (e): one reward model with this many ensemble heads on (c)'s labels (0: none)")
    parser.add_argument("--conservative", default="sd", choices=["sd", "var", "min"])
    parser.add_argument("--k", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-3,
                        help="3e-3 suits a head alone; use about 1e-4 with --full")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--freeze-layers", type=int, default=6,
                        help="backbone layers frozen (6: all of MiniLM's, only the head trains; at most the "
                        "backbone's layers)")
    parser.add_argument("--full", action="store_true", help="train the whole backbone (GPU)")
    parser.add_argument("--backbone", default="all-MiniLM-L6-v2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--png", type=Path, default=Path("overoptimization.png"))
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--curves", type=Path, help="also write the per-(seed, prompt) curves to this parquet file")
    parser.add_argument("--from-curves", help="comma-separated --curves files (of runs on disjoint seeds, run in "
                        "parallel): summarise and plot them together, training nothing")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    # a repeated seed ran again on the same data and candidates: its prompts counted twice as independent units,
    # every standard error too small by up to sqrt(2); no seed at all failed after loading the backbone
    if not args.from_curves and (not seeds or len(set(seeds)) < len(seeds)):
        parser.error(f"--seeds: one or more distinct seeds, not {args.seeds!r}")
    # no candidate failed in math.log2, no prompt in the standard error of nothing: after the first seed's training
    for option, value in (("--candidates", args.candidates), ("--prompts", args.prompts)):
        if not args.from_curves and value < 1:
            parser.error(f"{option}: at least 1, not {value}")
    # the biased raters take their share from the reliable ones' 0.9: above it the mix was normalised ('95%' ran
    # 90%), below 0 it ran none
    if not args.from_curves and not 0.0 <= args.biased_share <= 0.9:
        parser.error(f"--biased-share: a share of length-biased raters in 0..0.9, not {args.biased_share}")
    if not args.from_curves:  # the ensembles' conservative reward refused them after every model had been trained
        from accord.datasets.errors import AccordError
        from accord.reward.ensemble import check_ensemble

        for option, members in (("--members", args.members), ("--heads", args.heads)):
            try:
                if option == "--members" or members:  # --heads 0: no (e)
                    check_ensemble(members, args.conservative, args.k)
            except AccordError as error:
                parser.error(f"{option} {members}, --k {args.k}: {error}")
    import torch
    from transformers.utils import logging as hf_logging

    from accord.reward.model import resolve_model_path

    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()
    backbone = resolve_model_path(args.backbone)
    # --biased-share 0 is the run without biased raters: it ran twice, each seed pooled as two
    shares = [args.biased_share] + ([] if args.no_unbiased or args.biased_share == 0 else [0.0])
    started = time.perf_counter()
    cache = None
    if args.from_curves:
        frames = [pd.read_parquet(f) for f in args.from_curves.split(",")]
        # a seed at one share in two files (or one file named twice) ended in pandas' raw "Index contains duplicate
        # entries" (and would count one run as two independent seeds)
        seen: dict[tuple[float, int], str] = {}
        for name, frame in zip(args.from_curves.split(","), frames):
            for share, seed in frame[["biased share", "seed"]].drop_duplicates().itertuples(index=False):
                if (float(share), int(seed)) in seen:
                    parser.error(f"--from-curves: seed {seed} at {share:.0%} length-biased raters is in "
                                 f"{seen[float(share), int(seed)]} and in {name}: give runs on disjoint seeds")
                seen[float(share), int(seed)] = name
        by_share = results_from_curves(pd.concat(frames, ignore_index=True))
        for share, results in by_share.items():  # every seed's curves are read at results[0]'s n, column by column
            grids = {tuple(r["ns"]): r["seed"] for r in results}
            if len(grids) > 1:  # was an IndexError, or the longer runs' large n dropped unsaid
                parser.error(f"--from-curves: at {share:.0%} length-biased raters the seeds' curves stop at other n ("
                             + "; ".join(f"seed {seed}: n up to {max(ns)}" for ns, seed in grids.items())
                             + "): give runs with the same --candidates")
            # every seed's curves are summarised by results[0]'s methods: a --heads run beside one without was a
            # KeyError (the first seed with (e)) or (e) dropped unsaid (another seed with it)
            kinds = {tuple(sorted(r["utility"])): r["seed"] for r in results}
            if len(kinds) > 1:
                parser.error(f"--from-curves: at {share:.0%} length-biased raters the seeds' curves are of other "
                             "methods (" + "; ".join(f"seed {seed}: {', '.join(methods)}"
                                                     for methods, seed in kinds.items())
                             + "): give runs with the same --heads (with it, or all without)")
        seeds = sorted({r["seed"] for results in by_share.values() for r in results})
        print(f"curves of seeds {', '.join(map(str, seeds))} from {args.from_curves}")
    else:
        print(f"synthetic: {args.pairs:,} pairs, {args.annotators} raters, {JUDGMENTS_PER_PAIR} judgments per pair, "
              f"at most {args.max_filler} filler sentences; "
              f"reward models: {args.backbone}, "
              f"{'whole backbone' if args.full else f'{args.freeze_layers} layers frozen'}, "
              f"{args.steps} steps x {args.batch_size} pairs, lr {args.learning_rate}; (d): {args.members} "
              f"members, {args.conservative} k={args.k}" + (f"; (e): {args.heads} heads" if args.heads else ""),
              flush=True)
        cache = None if args.full else PooledCache(backbone)
        layers = None if cache is None else cache.model.config.num_hidden_layers
        if layers is not None and args.freeze_layers > layers:
            # the trainer refused it at the first reward model, in a traceback, after the first seed's labels fit
            parser.error(f"--freeze-layers {args.freeze_layers}: the backbone {args.backbone} has {layers} layers "
                         f"(--freeze-layers {layers} trains only the head, as 6 does for MiniLM)")
        if layers is not None and args.freeze_layers < layers:
            cache = None  # some layers train: every model scores through score()
        by_share = {share: [] for share in shares}
        with tempfile.TemporaryDirectory(prefix="overopt_") as tmp:
            work_dir = args.work_dir or Path(tmp)
            work_dir.mkdir(parents=True, exist_ok=True)
            for seed in seeds:  # a seed's texts are the same at every share: its embeddings are computed once
                for share in shares:
                    by_share[share].append(run_seed(seed, share, args, backbone, work_dir, cache))
                    if args.curves:  # after every seed: a stopped run keeps the seeds it finished
                        from accord.datasets.io import atomic_path

                        with atomic_path(args.curves) as tmp_path:
                            pd.concat([curves_frame(results, s) for s, results in by_share.items() if results],
                                      ignore_index=True).to_parquet(tmp_path)
    tables = [summarise(results, share) for share, results in by_share.items()]
    verdicts = [(share, checks(results, share)) for share, results in by_share.items()]
    table = pd.concat(tables, ignore_index=True)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        for (share, part), (_, lines) in zip(table.groupby("biased share", sort=False), verdicts):
            # the seeds of this share: --from-curves files may hold a share for some of their seeds only
            n_seeds = len(by_share[share])
            print(f"\n{share:.0%} length-biased raters ({n_seeds} seeds): true utility of best-of-n, its SE, the "
                  "paired difference to (a) and its SE, the chosen response's length (sentences); SEs between "
                  + ("seeds (a seed's prompts share its reward models)" if n_seeds > 1
                     else "seeds: n/a with one seed"))
            print(part.drop(columns="biased share").to_string(
                index=False, float_format="{:+.4f}".format, na_rep="n/a"))
            print("\n".join(lines))
    if cache is not None:
        print(f"pooled embeddings computed: {cache.computed:,} (each once)")
    plot(table, args.png)
    print(f"\nwrote {args.png}; wall time {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
