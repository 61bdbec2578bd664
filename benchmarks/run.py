"""Runs emjax and its peers on the same generated data in one process; writes JSON lines and a page.

Usage::

    python benchmarks/run.py                                    # every workload at full scale
    python benchmarks/run.py --scale small --workloads W1,W5    # a smoke run
    python benchmarks/run.py --libraries emjax,sklearn --out /tmp/bench

Every (workload, library) pair gives one JSON line, written as soon as it is measured, after a
header line (machine, versions, commit, matmul rate); a library that fails to import or to run
gives a line with ``"status": "failed"`` and the reason. The lines go to
``<out>/archive/<UTC date-time>_<commit>_<machine>_<scope>.jsonl`` and the page rendered from them
(``report.py``) beside them; a complete run (every workload and library, full scale on a CPU,
``--scale gpu`` on a GPU) then becomes ``<out>/cpu.jsonl`` / ``<out>/gpu-<card>.jsonl`` with its
page ``cpu.md`` / ``gpu-<card>.md``, and the run it replaces moves to the archive
(``store.py``). ``<out>`` is ``benchmarks/results`` unless ``--out`` names another folder.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import itertools
import json
import os
import platform
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import store  # noqa: E402
import workloads as wl  # noqa: E402
from scoring import gmm_flops_per_iteration, hmm_flops_per_iteration, load_average, median  # noqa: E402

LIBRARIES = ("emjax", "sklearn", "gmmx", "pomegranate", "hmmlearn", "hmmlearn_scaling", "dynamax")
MIXTURE_LIBRARIES = ("emjax", "sklearn", "gmmx", "pomegranate")
ALL_WORKLOADS = store.ALL_WORKLOADS
DIST = {"emjax": "emjax", "sklearn": "scikit-learn", "gmmx": "gmmx", "pomegranate": "pomegranate",
        "hmmlearn": "hmmlearn", "dynamax": "dynamax",
        "jax": "jax", "jaxlib": "jaxlib", "numpy": "numpy", "torch": "torch", "scipy": "scipy"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default=",".join(ALL_WORKLOADS), help="comma-separated, e.g. W1,W5")
    p.add_argument("--scale", default="full", choices=("small", "full", "gpu"))
    p.add_argument("--libraries", default=",".join(LIBRARIES), help="comma-separated subset of "
                   + ",".join(LIBRARIES))
    p.add_argument("--out", default=store.RESULTS_DIR, help="results folder (default "
                   "benchmarks/results): complete runs as cpu.* / gpu-<card>.*, the rest in its archive/")
    p.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up (median)")
    p.add_argument("--peer-budget", type=float, default=30.0,
                   help="seconds a host-looping peer (sklearn, pomegranate) may spend per timed run "
                        "of W1/W5 before a subset of restarts/datasets is timed and scaled")
    p.add_argument("--memory-limit-gb", type=float, default=16.0,
                   help="W6: kill a child whose resident memory passes this")
    p.add_argument("--memory-timeout", type=float, default=900.0, help="W6: seconds per child")
    p.add_argument("--w4r-restarts", type=int, default=None,
                   help="W4R: restarts run at once (default: the workload's 256); each record "
                        "says how many ran")
    p.add_argument("--no-report", action="store_true", help="write the JSON lines only")
    args = p.parse_args(argv)
    args.workloads = [s.strip() for s in args.workloads.split(",") if s.strip()]
    args.libraries = [s.strip() for s in args.libraries.split(",") if s.strip()]
    for lib in args.libraries:
        if lib not in LIBRARIES:
            p.error(f"unknown library {lib!r}; choose from {', '.join(LIBRARIES)}")
    known = wl.workloads(args.scale)
    for name in args.workloads:
        if name not in known:
            p.error(f"unknown workload {name!r}; choose from {', '.join(known)}")
    return args


# ------------------------------------------------------------------------------ machine and env
def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache",
                               "Hypervisor vendor"):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/meminfo") as f:
            info["MemTotal"] = f.readline().split(":")[1].strip()
    except OSError:
        pass
    try:
        import jax
        info["jax_devices"] = [str(d.device_kind) for d in jax.devices()]
        info["jax_backend"] = jax.default_backend()
    except Exception as err:  # noqa: BLE001
        info["jax_devices"] = f"unavailable: {err}"
    if info.get("jax_backend") == "gpu":
        try:
            info["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                          "--format=csv,noheader"], capture_output=True, text=True,
                                         timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def git_state() -> dict:
    """Which emjax the run measured: its commit and whether emjax/ had uncommitted changes (the
    folder it was imported from is not recorded: it names a checkout of one machine).

    To measure a fixed commit while emjax/ is being edited, unpack it elsewhere and put it first
    on the path: ``git archive HEAD emjax | tar -x -C /tmp/pin && git rev-parse --short HEAD >
    /tmp/pin/BENCH_COMMIT && PYTHONPATH=/tmp/pin python benchmarks/run.py`` (BENCH_COMMIT names
    the commit of a folder that is not a git checkout).
    """
    try:
        import emjax
        src = os.path.dirname(os.path.dirname(os.path.abspath(emjax.__file__)))
    except Exception:  # noqa: BLE001
        return {"commit": None, "emjax_dirty": None}
    state = {"commit": None, "emjax_dirty": None}
    marker = os.path.join(src, "BENCH_COMMIT")
    if os.path.exists(marker):
        with open(marker) as f:
            state.update(commit=f.read().strip(), emjax_dirty=False)
        return state
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=src, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "emjax"], capture_output=True,
                               text=True, cwd=src, timeout=10).stdout.strip()
        state.update(commit=head or None, emjax_dirty=bool(dirty) if head else None)
    except (OSError, subprocess.SubprocessError):
        pass
    return state


def versions() -> dict:
    out = {}
    for name, dist in DIST.items():
        try:
            out[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def matmul_rate(size: int = 2048, runs: int = 10) -> dict:
    """float32 ``jnp.dot`` of two ``size x size`` matrices under jit: GFLOP/s (median of runs)."""
    import jax
    import jax.numpy as jnp
    a = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(2), (size, size), jnp.float32)
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        dot(a, b).block_until_ready()
        times.append(time.perf_counter() - t0)
    flops = 2.0 * size ** 3
    return {"size": size, "median_s": median(times), "gflops": flops / median(times) / 1e9,
            "best_gflops": flops / min(times) / 1e9, "runs": runs}


def import_error(lib: str) -> str | None:
    """None when ``lib`` imports; else the reason."""
    modules = {"emjax": ["emjax"], "sklearn": ["sklearn.mixture"], "gmmx": ["gmmx"],
               "pomegranate": ["torch", "pomegranate.gmm"], "hmmlearn": ["hmmlearn.hmm"],
               "hmmlearn_scaling": ["hmmlearn.hmm"], "dynamax": ["dynamax.hidden_markov_model"]}[lib]
    for module in modules:
        try:
            __import__(module)
        except Exception as err:  # noqa: BLE001
            return f"import {module} failed: {type(err).__name__}: {err}"
    return None


# ----------------------------------------------------------------------------------- measuring
def measure_fit(lib, w, x, args) -> dict:
    import peers
    load = load_average()
    rec = peers.RUNNERS[lib](w, x, args.repeats, args.peer_budget)
    rec["load_avg_before"] = load
    rec["load_avg_after"] = load_average()
    if w.n_steps:
        per_iteration = hmm_flops_per_iteration(w.n * w.n_steps, w.k, w.d)
    else:
        per_iteration = gmm_flops_per_iteration(w.n, w.k, w.d, w.covariance_type)
    flops = per_iteration * w.max_iter * w.n_init * w.n_datasets
    rec["gflops_per_s"] = flops / rec["wall_s"] / 1e9
    return rec


def measure_memory(lib, w, args):
    """W6 records of ``lib``: one fresh process per covariance type; emjax also with the data in a
    64-byte-aligned buffer (the layout JAX's CPU client uses in place, see memory.py)."""
    import memory
    layouts = ("numpy", "aligned") if lib == "emjax" else ("numpy",)
    for covariance_type, layout in itertools.product(w.covariance_types or (w.covariance_type,), layouts):
        base = dict(workload=w.name, title=w.title, library=lib, covariance_type=covariance_type,
                    n=w.n, d=w.d, k=w.k, max_iter=w.max_iter, scale=args.scale, data_layout=layout)
        try:
            rep = memory.measure(lib, w, covariance_type, int(args.memory_limit_gb * 2**30),
                                 args.memory_timeout, layout)
            data = rep["data_bytes"]
            rep["peak_over_data"] = rep["peak_rss"] / data
            rep["peak_above_baseline_over_data"] = (rep["peak_rss"] - rep["baseline_rss"]) / data
            yield dict(base, status="ok", **rep)
        except Exception as err:  # noqa: BLE001
            yield dict(base, status="failed", error=f"{type(err).__name__}: {err}")


def recorded_argv(argv) -> list:
    """The command line without ``--out FOLDER`` (a scratch or checkout path of one machine)."""
    argv, out = list(argv), []
    while argv:
        arg = argv.pop(0)
        if arg == "--out":
            argv[:1] = []
        elif not arg.startswith("--out="):
            out.append(arg)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    header = dict(kind="run", scale=args.scale, started=started.isoformat(timespec="seconds"),
                  machine=machine(), versions=versions(), git=git_state(),
                  argv=recorded_argv(sys.argv[1:] if argv is None else argv),
                  workloads=args.workloads, libraries=args.libraries, load_avg=os.getloadavg())
    header["archive_name"] = store.dated_name(header, args.workloads)
    jsonl = store.raw_path(args.out, header)

    def emit(rec):
        with open(jsonl, "a") as f:
            f.write(json.dumps(rec, default=float) + "\n")
        brief = {k: rec.get(k) for k in ("workload", "library", "covariance_type", "status", "wall_s",
                                         "compile_s", "restart_iters_per_s", "loglik",
                                         "peak_above_baseline_over_data", "error") if k in rec}
        if rec.get("kind") in ("fit", "memory"):
            print(json.dumps(brief, default=float), flush=True)

    open(jsonl, "w").close()
    header["matmul"] = matmul_rate()
    emit(header)

    broken = {lib: import_error(lib) for lib in args.libraries}
    all_w = wl.workloads(args.scale)
    if args.w4r_restarts:
        all_w["W4R"] = dataclasses.replace(all_w["W4R"], n_init=args.w4r_restarts)
    for name in args.workloads:
        w = all_w[name]
        if w.memory:
            for lib in (lib for lib in args.libraries if lib in (w.libraries or MIXTURE_LIBRARIES)):
                if broken[lib]:
                    for cov in w.covariance_types:
                        emit(dict(kind="memory", workload=name, library=lib, covariance_type=cov,
                                  status="failed", error=broken[lib]))
                    continue
                for rec in measure_memory(lib, w, args):
                    emit(dict(kind="memory", **rec))
            continue
        print(f"# {name}: generating data", flush=True)
        x = wl.hmm_data_for(w) if w.n_steps else wl.data_for(w)
        for lib in args.libraries:
            if lib not in (w.libraries or MIXTURE_LIBRARIES):
                continue
            base = dict(kind="fit", workload=name, title=w.title, library=lib, n=w.n, d=w.d, k=w.k,
                        covariance_type=w.covariance_type, max_iter=w.max_iter, scale=args.scale,
                        dtype="float32", n_steps=w.n_steps)
            if broken[lib]:
                emit(dict(base, status="failed", error=broken[lib]))
                continue
            try:
                emit(dict(base, status="ok", **measure_fit(lib, w, x, args)))
            except Exception as err:  # noqa: BLE001
                tb = traceback.format_exc(limit=-3)
                emit(dict(base, status="failed", error=f"{type(err).__name__}: {err}"[:500],
                          traceback=tb[-2000:]))
        del x

    emit(dict(kind="end", finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              load_avg=os.getloadavg()))
    latest = store.latest_name(header, LIBRARIES)
    if latest:
        jsonl = store.publish(args.out, jsonl, latest)
    if not args.no_report:
        import report
        print(f"wrote {report.write_page(jsonl)}")
    print(f"wrote {jsonl}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
