"""A roofline per workload: what bounds emjax's fit of W1-W5 on this machine, and how close it is.

    python benchmarks/probes/roofline.py RESULTS.jsonl [RESULTS.jsonl ...]

reads emjax's wall times from ``run.py`` or ``alternating.py`` lines (the median over every emjax
line of a workload) and the matmul rates those runs measured, measures the memory bandwidth, and
prints one markdown row per workload:

* the **compute roof**: the float32 matmul rate the runs recorded (median; ``run.matmul_rate``,
  jit ``jnp.dot`` of 2048 x 2048 matrices, measured before and after the workloads in the same
  process), the most this machine delivers to any E-step;
* the **memory roof**: streaming bandwidth (a jitted ``2 a + 1`` over 256 MiB: every byte read
  once and written once, median of runs) times the workload's arithmetic intensity.

A workload's useful flops are ``scoring.gmm_flops_per_iteration`` per restart, dataset and
iteration (W4: the same for its emissions plus ``7 K^2`` per step for the forward and backward
recursions and the pair marginals). Its least memory traffic is the data read once per
iteration and per restart block (W1's 5,000 x 2 rows and W5's datasets stay in cache across
restarts and iterations, so theirs is the data once). The bound is the lower of the two roofs;
the achieved fraction is emjax's GFLOP/s over it. W4's forward-backward is a recursion over
1,000 steps, so neither roof bounds it: its critical path of dependent small products does,
and the fraction of the compute roof says how far it is from being compute bound.

Run it on the machine that produced the results, as quiet as they were: the bandwidth is
measured now (its load is printed), the rest comes from the files.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import workloads as wl  # noqa: E402
from scoring import gmm_flops_per_iteration  # noqa: E402

BANDWIDTH_BYTES = 1 << 28


def bandwidth(runs: int = 10) -> float:
    """Streaming bandwidth in GB/s: a jitted ``0.5 a + 1`` over ``BANDWIDTH_BYTES`` of float32
    (read once, written once into the donated input, so no page is newly mapped), median of
    ``runs``."""
    import jax
    import jax.numpy as jnp
    a = jnp.ones(BANDWIDTH_BYTES // 4, jnp.float32)
    step = jax.jit(lambda v: 0.5 * v + 1, donate_argnums=0)
    a = step(a).block_until_ready()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        a = step(a).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * BANDWIDTH_BYTES / statistics.median(times) / 1e9


def useful_flops(w) -> float:
    """Useful flops of one whole fit of workload ``w`` (module docstring)."""
    if w.n_steps:
        rows = w.n * w.n_steps
        per_iteration = gmm_flops_per_iteration(rows, w.k, w.d, w.covariance_type) + 7.0 * rows * w.k ** 2
    else:
        per_iteration = gmm_flops_per_iteration(w.n, w.k, w.d, w.covariance_type) * w.n_init * w.n_datasets
    return per_iteration * w.max_iter


def least_bytes(w) -> float:
    """Least memory traffic of one fit: the float32 data once per iteration, unless it fits in
    cache across restarts and iterations (module docstring)."""
    rows = w.n * (w.n_steps or 1) * w.n_datasets
    data = 4.0 * rows * w.d
    cached = w.n_init > 1 or w.n_datasets > 1 or w.n_steps
    return data if cached else data * w.max_iter


def read_results(paths) -> tuple[dict, float]:
    """emjax's median wall time per workload over every fit line of ``paths``, and the median
    of the matmul rates the runs recorded (their headers and alternating summaries)."""
    walls: dict = {}
    rates = []
    for path in paths:
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("library") == "emjax" and rec.get("wall_s") and rec.get("status", "ok") == "ok":
                    walls.setdefault(rec["workload"], []).append(rec["wall_s"])
                if isinstance(rec.get("matmul"), dict):
                    rates.append(rec["matmul"]["gflops"])
                if rec.get("matmul_gflops_after"):
                    rates.append(rec["matmul_gflops_after"])
    if not rates:
        raise SystemExit("no matmul rate in the files: give run.py or alternating.py results")
    return {name: statistics.median(v) for name, v in walls.items()}, statistics.median(rates)


def main(argv=None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(__doc__)
        return 2
    walls, matmul = read_results(paths)
    stream = bandwidth()
    print(f"compute roof (float32 matmul, as the runs measured it) {matmul:.1f} GFLOP/s; memory roof "
          f"{stream:.1f} GB/s (measured now, load {os.getloadavg()[0]:.1f}) x intensity\n")
    print("| workload | GFLOP per fit | least GB | flop/byte | bound | roof (GFLOP/s) | emjax wall (s) "
          "| emjax GFLOP/s | fraction of roof |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for name, w in wl.workloads("full").items():
        if name not in walls:
            continue
        flops, traffic = useful_flops(w), least_bytes(w)
        intensity = flops / traffic
        memory_roof = intensity * stream
        bound = "recursion (compute roof shown)" if w.n_steps else (
            "compute" if matmul <= memory_roof else "memory")
        roof = min(matmul, memory_roof)
        achieved = flops / walls[name] / 1e9
        print(f"| {name} | {flops / 1e9:.3g} | {traffic / 1e9:.3g} | {intensity:.3g} | {bound} | "
              f"{roof:.1f} | {walls[name]:.3g} | {achieved:.3g} | {achieved / roof:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
