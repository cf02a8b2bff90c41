#!/usr/bin/env bash
# GPU check (issue 15, point 7): one AMP training step and an evaluation per task, then SpikeYOLO-s and
# gesture TA-SNN throughput; prints one JSON object (see benchmarks/gpu_check.py). Run from anywhere:
#   bash benchmarks/gpu_check.sh                 # needs a CUDA device visible to torch
#   bash benchmarks/gpu_check.sh --device cpu --smoke   # dry run of the same code on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
if [[ " $* " != *" --device cpu "* ]]; then
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
exec "$PYTHON" benchmarks/gpu_check.py "$@"
