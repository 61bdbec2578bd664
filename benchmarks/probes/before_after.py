"""emjax at two (or more) commits on W1-W5, their runs alternating in one driver.

Usage::

    git archive 01d10d6 emjax | tar -x -C /tmp/before     # each commit's emjax/ unpacked
    git archive HEAD emjax | tar -x -C /tmp/after
    python benchmarks/probes/before_after.py before=/tmp/before after=/tmp/after --rounds 3

A refactor must not cost speed, and a machine's load drifts within minutes, so every round runs
each commit once per workload, in turn, each in a fresh process that imports emjax from its own
folder (the only way two versions of one package meet in one run). A child times a warm-up fit
(compile included), then the median of ``--repeats`` fits, through the API every version since the
first has: ``emjax.fit`` (W1-W4; W4 a Gaussian HMM) and ``jax.jit(jax.vmap(emjax.fit))`` (W5).
The driver prints one JSON line per (round, workload, commit) and, at the end, per workload the
median over rounds of each commit's time and its ratio to the first commit's.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)


def child(workload: str, repeats: int) -> dict:
    """One workload's timings for the emjax first on ``sys.path``."""
    sys.path.insert(0, BENCH)
    import jax
    import jax.numpy as jnp

    import emjax
    import workloads as wl

    w = wl.workloads("full")[workload]
    key = jax.random.key(0)
    opts = dict(max_iter=w.max_iter, tol=0.0, throw=False)
    if w.n_steps:
        x, lengths = wl.hmm_data_for(w)
        model = emjax.GaussianHMM(w.k, covariance_type=w.covariance_type)
        run = lambda: emjax.fit(model, (x, lengths), key, n_init=w.n_init, **opts)  # noqa: E731
    elif w.n_datasets > 1:
        model = emjax.GaussianMixture(w.k, covariance_type=w.covariance_type)
        xj = jnp.asarray(wl.data_for(w))
        fit_all = jax.jit(jax.vmap(lambda xd, k: emjax.fit(model, xd, k, n_init=1, **opts)))
        keys = jax.random.split(key, w.n_datasets)
        run = lambda: fit_all(xj, keys)  # noqa: E731
    else:
        model = emjax.GaussianMixture(w.k, covariance_type=w.covariance_type)
        xj = jnp.asarray(wl.data_for(w))
        run = lambda: emjax.fit(model, xj, key, n_init=w.n_init, **opts)  # noqa: E731
    start = time.perf_counter()
    jax.block_until_ready(run())
    first = time.perf_counter() - start
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run())
        walls.append(time.perf_counter() - start)
    return dict(workload=workload, first_s=first, wall_s=statistics.median(walls), walls=walls)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trees", nargs="*", help="label=folder holding that commit's emjax/")
    p.add_argument("--workloads", default="W1,W2,W3,W4,W5")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.repeats)))
        return 0
    trees = dict(t.split("=", 1) for t in args.trees)
    results: dict = {}
    for round_ in range(args.rounds):
        for workload in args.workloads.split(","):
            for label, folder in trees.items():
                env = dict(os.environ, PYTHONPATH=os.path.abspath(folder))
                out = subprocess.run([sys.executable, __file__, "--child", workload, "--repeats",
                                      str(args.repeats)], env=env, capture_output=True, text=True)
                if out.returncode:
                    raise RuntimeError(f"{label} {workload}: {out.stderr[-2000:]}")
                line = json.loads(out.stdout.strip().splitlines()[-1])
                line.update(round=round_, label=label, load_avg=os.getloadavg()[0])
                print(json.dumps(line), flush=True)
                results.setdefault(workload, {}).setdefault(label, []).append(line["wall_s"])
    first = next(iter(trees))
    for workload, by_label in results.items():
        medians = {label: statistics.median(v) for label, v in by_label.items()}
        ratios = {label: medians[first] / m for label, m in medians.items()}
        print(json.dumps(dict(kind="summary", workload=workload, median_wall_s=medians,
                              speed_vs_first=ratios)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
