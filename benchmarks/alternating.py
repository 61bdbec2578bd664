"""emjax against chosen peers with their runs alternating in one process, on the same data.

Usage::

    python benchmarks/alternating.py --workloads W2 --libraries emjax,pomegranate --rounds 3

On a shared machine load changes within minutes: ``run.py`` times each library in one block, so a
burst of load can land on one library alone. Here every round times each library once (after its
own warm-up) in turn, so load hits all of them alike; the ratio of medians over rounds is the
figure to quote. Each round's record is one JSON line of ``run.py``'s format with a ``round``
field, in ``benchmarks/results/archive/<UTC>_<commit>_<machine>_alternating-<workloads>.jsonl``; a last
line per workload (``kind: "alternating"``) holds the medians, emjax's ratio to each peer, and
emjax's GFLOP/s as a fraction of the float32 matmul rate measured before and after the rounds.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402
import store  # noqa: E402
import workloads as wl  # noqa: E402
from scoring import median  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default="W2")
    p.add_argument("--libraries", default="emjax,pomegranate")
    p.add_argument("--scale", default="full", choices=("small", "full", "gpu"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--peer-budget", type=float, default=30.0)
    p.add_argument("--out", default=store.RESULTS_DIR, help="results folder; the lines go to its archive/")
    args = p.parse_args(argv)
    args.repeats = 1
    names, libraries = args.workloads.split(","), args.libraries.split(",")
    started = datetime.datetime.now(datetime.timezone.utc)
    header = dict(kind="run", mode="alternating", scale=args.scale,
                  started=started.isoformat(timespec="seconds"), machine=run.machine(),
                  versions=run.versions(), git=run.git_state(),
                  argv=run.recorded_argv(sys.argv[1:] if argv is None else argv),
                  load_avg=os.getloadavg(), matmul=run.matmul_rate())
    header["archive_name"] = store.dated_name(header, names, mode="alternating")
    path = store.raw_path(args.out, header)

    def emit(rec):
        with open(path, "a") as f:
            f.write(json.dumps(rec, default=float) + "\n")
        print(json.dumps({k: rec.get(k) for k in ("kind", "workload", "library", "round", "wall_s",
                                                  "cpu_s", "compile_s", "ratios", "load_avg_before")
                          if k in rec}, default=float), flush=True)

    emit(header)
    all_w = wl.workloads(args.scale)
    for wname in names:
        w = all_w[wname]
        x = wl.hmm_data_for(w) if w.n_steps else wl.data_for(w)
        walls = {lib: [] for lib in libraries}
        for rnd in range(args.rounds):
            for lib in libraries:
                rec = run.measure_fit(lib, w, x, args)
                walls[lib].append(rec["wall_s"])
                emit(dict(kind="fit", workload=wname, library=lib, round=rnd, n=w.n, d=w.d, k=w.k,
                          covariance_type=w.covariance_type, max_iter=w.max_iter, scale=args.scale,
                          dtype="float32", status="ok", **rec))
        after = run.matmul_rate()
        med = {lib: median(v) for lib, v in walls.items()}
        flops = run.gmm_flops_per_iteration(w.n, w.k, w.d, w.covariance_type) * w.max_iter * w.n_init * w.n_datasets
        rate = flops / med["emjax"] / 1e9
        emit(dict(kind="alternating", workload=wname, median_wall_s=med, rounds=args.rounds,
                  ratios={lib: med[lib] / med["emjax"] for lib in libraries if lib != "emjax"},
                  emjax_gflops_per_s=rate, matmul_gflops_before=header["matmul"]["gflops"],
                  matmul_gflops_after=after["gflops"],
                  fraction_of_matmul=rate / median([header["matmul"]["gflops"], after["gflops"]]),
                  load_avg=os.getloadavg()))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
