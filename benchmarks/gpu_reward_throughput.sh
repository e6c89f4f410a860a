#!/usr/bin/env bash
# GPU throughput check of accord's reward trainer against TRL's RewardTrainer (issue 5, "what it must show" 3).
#
#   benchmarks/gpu_reward_throughput.sh pack    # here (where TRL is installed): copy TRL and the packages it needs
#                                               # but a bare GPU machine lacks into build/trl_site/ (carry that path)
#   benchmarks/gpu_reward_throughput.sh run     # on the GPU machine: Qwen2-0.5B shape, bf16, 16 pairs of 128-1024
#                                               # tokens per step; prints tokens/s, pairs/s, peak memory and MFU
#   benchmarks/gpu_reward_throughput.sh smoke   # anywhere: the same code path on a CPU with a tiny shape
#
# Targets: accord >= 2x TRL's best configuration (RewardTrainer with activation checkpointing off) in real tokens/s
# and >= 4x TRL with its defaults, measured side by side in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
SITE=build/trl_site

case "${1:-run}" in
  pack)
    rm -rf "$SITE" && mkdir -p "$SITE"
    for pkg in trl datasets dill multiprocess xxhash; do
      dir=$($PY -c "import importlib.util as u, os; s = u.find_spec('$pkg'); print(os.path.dirname(s.origin))")
      cp -r "$dir" "$SITE/"
    done
    # single-module packages that datasets imports
    for mod in _multiprocess; do
      path=$($PY -c "import importlib.util as u; s = u.find_spec('$mod'); print(s.origin if s else '')" || true)
      [ -n "$path" ] && cp -r "$(dirname "$path")/$mod"* "$SITE/" 2>/dev/null || true
    done
    du -sh "$SITE"
    ;;
  run)
    export PYTHONPATH="$PWD/$SITE:$PWD:${PYTHONPATH:-}"
    $PY -c "import torch; assert torch.cuda.is_available(), 'no GPU'; print(torch.cuda.get_device_name())"
    $PY -c "import trl" 2>/dev/null || { echo "TRL missing: run '$0 pack' where it is installed and carry $SITE"; exit 2; }
    $PY benchmarks/reward_throughput.py --gpu --repeats "${REPEATS:-1}" --json "${OUT:-reward_throughput_gpu.json}"
    ;;
  smoke)
    $PY benchmarks/reward_throughput.py --gpu --smoke --repeats 1
    ;;
  *)
    echo "usage: $0 pack|run|smoke" >&2
    exit 2
    ;;
esac
