#!/usr/bin/env bash
# Runs the benchmark workloads scaled up for a CUDA machine (W1 with 10,000 restarts, W2 with
# N = 10M; the rest as on CPU): benchmarks/run.py --scale gpu, after checking that jax sees a GPU.
#
#   benchmarks/gpu.sh                      # all workloads, all libraries
#   benchmarks/gpu.sh --workloads W1,W2    # any run.py flags are passed through
#
# Needs a jax with CUDA (pip install -U "jax[cuda12]==<the installed jax version>") in the
# interpreter named by $PYTHON (default: .venv/bin/python, else python3). A complete run (every
# workload and library) becomes benchmarks/results/gpu-<card>.jsonl and .md (e.g. gpu-h200), the
# previous one moving to results/archive/; any other run is written to results/archive/ under its
# dated name (benchmarks/store.py). run.py prints the paths it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"

if command -v nvidia-smi >/dev/null 2>&1; then
  echo "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
else
  echo "nvidia-smi not found: this does not look like a CUDA machine" >&2
fi
backend="$("$PYTHON" -c 'import jax; print(jax.default_backend())')"
if [ "$backend" != "gpu" ]; then
  echo "jax's default backend is '$backend', not 'gpu': install jax with CUDA support first" >&2
  exit 1
fi
"$PYTHON" benchmarks/run.py --scale gpu "$@"
