#!/usr/bin/env bash
# One call on a lent GPU machine (about 6-10 minutes): the GPU-marked tests, the precision policy and parity
# tests, the benchmark table on CUDA,
# and a short DDP run when there is more than one GPU. Writes everything under ${OUT:-gpu-check}/.
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
py=${PYTHON:-.venv/bin/python}
if [ ! -x "$py" ]; then
  python3 -m venv .venv && .venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1 && .venv/bin/pip install -q -e '.[dev]'
  py=.venv/bin/python
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1

echo "== GPU-marked tests"
timeout 180 "$py" -m pytest -m gpu tests -q -p no:cacheprovider 2>&1 | tee "$out/tests.txt" | tail -n 15

echo "== precision policy and parity bounds (the policy's cache, overrides, never-slower rule; bf16 vs fp32 per demo model)"
DEEPFAKE_LAB_PARITY=1 timeout 300 "$py" -m pytest tests/test_precision.py -q -p no:cacheprovider 2>&1 | tee "$out/precision.txt" | tail -n 15
"$py" -c "import torch; from deepfake_lab.device import policy_summary; print('auto on CUDA:', policy_summary(torch.device('cuda')))" | tee -a "$out/precision.txt"

echo "== benchmarks on CUDA"
timeout 240 "$py" benchmarks/run.py --device cuda 2>&1 | tee "$out/bench.txt"

gpus=$(nvidia-smi -L | wc -l)
if [ "$gpus" -gt 1 ]; then
  echo "== DDP with $gpus GPUs"
  timeout 120 "$py" -m torch.distributed.run --standalone --nproc_per_node="$gpus" -m deepfake_lab.cli \
    train gan --data digits --steps 200 --out "$out/ddp" --no-progress 2>&1 | tail -n 5 | tee "$out/ddp.txt"
fi
echo "results in $out/"
