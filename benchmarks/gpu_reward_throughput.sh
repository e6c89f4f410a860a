#!/usr/bin/env bash
# GPU throughput check of accord's reward trainer against TRL's RewardTrainer.
#
#   benchmarks/gpu_reward_throughput.sh pack    # on a machine with internet: download the wheels a GPU machine
#                                               # without internet lacks (TRL, datasets, dill, multiprocess; Python
#                                               # 3.12) into build/wheels/, then copy the checkout with it
#   benchmarks/gpu_reward_throughput.sh run     # on the GPU machine: Qwen2-0.5B shape, bf16, 16 pairs of 128-1024
#                                               # tokens per step; prints tokens/s, pairs/s, peak memory and MFU
#   benchmarks/gpu_reward_throughput.sh smoke   # anywhere: the same code path on a CPU with a tiny shape
#
# Targets: accord >= 2x TRL's best configuration (RewardTrainer with activation checkpointing off) in real tokens/s
# and >= 4x TRL with its defaults, measured side by side in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=build/wheels

case "${1:-run}" in
  pack)
    rm -rf "$WHEELS" && mkdir -p "$WHEELS"
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$WHEELS" trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
    du -sh "$WHEELS"
    ;;
  run)
    $PY -c "import torch; assert torch.cuda.is_available(), 'no GPU'; print(torch.cuda.get_device_name())"
    if ! $PY -c "import trl" 2>/dev/null; then
      ls "$WHEELS"/*.whl >/dev/null 2>&1 || {
        echo "TRL missing: run '$0 pack' on a machine with internet and copy $WHEELS here"; exit 2; }
      $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/accord-site "$WHEELS"/*.whl
      export PYTHONPATH="/tmp/accord-site:${PYTHONPATH:-}"
    fi
    export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
    $PY benchmarks/reward_throughput.py --gpu --repeats "${REPEATS:-1}" --worker-timeout "${WORKER_TIMEOUT:-300}" \
      --steps "${STEPS:-40}" \
      --json "${JSON:-reward_throughput_gpu.json}"
    ;;
  smoke)
    $PY benchmarks/reward_throughput.py --gpu --smoke --repeats 1
    ;;
  *)
    echo "usage: $0 pack|run|smoke" >&2
    exit 2
    ;;
esac
