#!/usr/bin/env bash
# Runs the benchmark workloads scaled up for a CUDA machine (W1 with 10,000 restarts, W2 with
# N = 10M; the rest as on CPU) and prints the table with the card's name.
#
#   benchmarks/gpu.sh                      # all workloads, all libraries
#   benchmarks/gpu.sh --workloads W1,W2    # any run.py flags are passed through
#
# Needs a jax with CUDA (pip install -U "jax[cuda12]==<the installed jax version>") in the
# interpreter named by $PYTHON (default: .venv/bin/python, else python3). Writes
# benchmarks/results/<UTC date-time>_<commit>_<gpu>_gpu.jsonl and renders them into
# benchmarks/RESULTS-gpu.md (which replaces the hand-written page: keep it with --no-report).
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
cat benchmarks/RESULTS-gpu.md
