#!/usr/bin/env bash
# The GPU checks in one run (issue 21), meant to finish in under 5 minutes on one
# H100/H200: the GPU-marked tests (the fused path on CUDA against the reference path), then
# the ratio table against cuDNN's nn.LSTM (every LSTM scheme, H = 256 and 650, B = 32,
# T = 35, TF32 off for both, wall time around synchronized calls, peak memory from
# torch.cuda.max_memory_allocated).
#
#   bash benchmarks/gpu_check.sh [RESULTS_DIR]      # default: $OUT, else gpu_results/
#
# Run from the repository root with the project's interpreter first on PATH (or PYTHON=...).
# Step kernels compile with Inductor (Triton on CUDA) into the kernel cache before timing;
# each part has its own time limit, so a slow part cannot eat the others' time.
set -euo pipefail
PY=${PYTHON:-python}
DIR=${1:-${OUT:-gpu_results}}
mkdir -p "$DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'PYEOF' | tee "$DIR/device.txt"
import torch
if not torch.cuda.is_available():
    raise SystemExit("gpu_check: no CUDA device visible to torch " + torch.__version__)
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())
PYEOF
nvidia-smi > "$DIR/nvidia-smi.txt" 2>&1 || true
start=$(date +%s)
status=0
timeout 120 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests \
    2>&1 | tee "$DIR/pytest_gpu.txt" || status=$?
MEMLOSS_COMPILE=always timeout 150 "$PY" -m benchmarks.cpu_table --device cuda \
    --hidden 256 650 --threads 1 --rounds 5 --json "$DIR/gpu_table.json" \
    2>&1 | tee "$DIR/gpu_table.txt" || status=$?
echo "gpu_check: $(( $(date +%s) - start )) s, exit status $status" | tee -a "$DIR/device.txt"
exit $status
