"""Where emjax's time goes on a benchmark workload: compile phases, HLO op counts, E-step pieces.

    python benchmarks/probes/profile_emjax.py --workloads W1,W2,W3 [--scale full] [--trace DIR]

For each workload it prints:
* compile time split into tracing/lowering and XLA compilation;
* op counts of the optimised HLO of the whole fit (fusions, dots, transposes, copies, loops) and
  the shapes of its dot products (tiny contractions are slow on CPU);
* steady-state time of one EM iteration (a fit with max_iter=I minus one with max_iter=1,
  divided by I-1) next to the time of the pieces of one iteration, each jitted and vmapped over
  the workload's restarts on one chunk of rows and multiplied by the number of chunks:
  log-densities, log-sum-exp + responsibilities, sufficient statistics, the whole E-step, the
  M-step (+ log prior, degeneracy check);
* achieved GFLOP/s of each piece against the float32 matmul rate.
With ``--trace DIR`` a ``jax.profiler`` trace of one fit is written (open it in Perfetto).
"""
from __future__ import annotations

import argparse
import dataclasses
import collections
import importlib
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the probes, then the harness (workloads, scoring, run)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.scipy.special import logsumexp  # noqa: E402

import emjax  # noqa: E402
import workloads as wl  # noqa: E402
from scoring import gmm_flops_per_iteration, median  # noqa: E402

fitmod = importlib.import_module("emjax.engine.restarts")
chunking = importlib.import_module("emjax.core.chunking")
gauss = importlib.import_module("emjax.components.gaussian")


def bench(fn, *args, runs=5):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return median(times)


def hlo_summary(text: str, top: int = 12) -> str:
    ops = collections.Counter(re.findall(r"=\s*\S+\s+([a-z][a-z0-9\-_]*)\(", text))
    keep = ("fusion", "dot", "convolution", "transpose", "copy", "while", "custom-call",
            "reduce", "broadcast", "dynamic-slice", "dynamic-update-slice", "exponential", "log",
            "call", "conditional", "sort", "scatter", "gather")
    counts = ", ".join(f"{op} {ops[op]}" for op in keep if ops.get(op))
    shapes = dict(re.findall(r"^\s*(?:ROOT\s+)?(%?[\w.\-]+)\s*=\s*(\w+\[[0-9,]*\])", text, re.M))
    dots = collections.Counter()
    for line in text.splitlines():
        m = re.search(r"=\s*(\w+\[[0-9,]*\])\S*\s+(dot|convolution)\(([^)]*)\)", line)
        if not m:
            continue
        operands = [shapes.get(o.strip().split(" ")[-1], o.strip()) for o in m.group(3).split(",")]
        dims = re.search(r"(lhs_batch_dims=\{[0-9,]*\}, )?lhs_contracting_dims=\{[0-9,]*\}", line)
        dots[f"{m.group(1)} <- {' x '.join(operands)} {dims.group(0) if dims else ''}"] += 1
    lines = [f"  HLO ops: {counts}", f"  dot products ({sum(dots.values())}):"]
    lines += [f"    {n} x {d}" for d, n in dots.most_common(top)]
    return "\n".join(lines)


def memory_summary(compiled, data_bytes) -> str:
    """XLA's buffer assignment for the compiled fit: temporaries against the data's size."""
    try:
        m = compiled.memory_analysis()
    except Exception as err:  # noqa: BLE001
        return f"  memory analysis unavailable: {err}"
    mb = 2 ** 20
    return (f"  XLA buffers: arguments {m.argument_size_in_bytes / mb:.0f} MiB, outputs "
            f"{m.output_size_in_bytes / mb:.1f} MiB, temporaries {m.temp_size_in_bytes / mb:.0f} MiB "
            f"= {m.temp_size_in_bytes / data_bytes:.2f}x the data ({data_bytes / mb:.0f} MiB)")


def profile(w, trace_dir=None, matmul_gflops=None):
    model = emjax.GaussianMixture(w.k, covariance_type=w.covariance_type)
    x = wl.data_for(w)
    key = jax.random.key(0)
    r, k, d = w.n_init, w.k, w.d
    print(f"\n=== {w.name}: N={w.n} D={d} K={k} {w.covariance_type} restarts={r} iters={w.max_iter}")

    # compile: tracing + lowering vs XLA
    args, static = fitmod._prepare(model, x, key, r, None, w.max_iter, 0.0, None, None)
    t0 = time.perf_counter()
    lowered = fitmod._fit_jit.lower(*args, **static)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    chunk = static["plan"].chunk_size
    n_chunks = -(-w.n // chunk)
    print(f"  compile: trace+lower {t1 - t0:.2f} s, XLA compile {t2 - t1:.2f} s; chunk_size={chunk} "
          f"({n_chunks} chunks), init_batch={static['plan'].init_batch}")
    print(hlo_summary(compiled.as_text()))
    print(memory_summary(compiled, x.nbytes))
    if w.memory:
        return

    # steady state per iteration: fit(I) - fit(1)
    run_full = bench(compiled, *args, runs=3)
    args1, static1 = fitmod._prepare(model, x, key, r, None, 1, 0.0, None, None)
    one_iter = fitmod._fit_jit.lower(*args1, **static1).compile()
    run_one = bench(one_iter, *args1, runs=3)
    per_iter = (run_full - run_one) / (w.max_iter - 1)
    flops = gmm_flops_per_iteration(w.n, k, d, w.covariance_type) * r
    print(f"  fit: {run_full:.3f} s for {w.max_iter} iterations; fit with 1 iteration (init, "
          f"standardise, select) {run_one:.3f} s; per iteration {per_iter * 1e3:.2f} ms = "
          f"{flops / per_iter / 1e9:.2f} GFLOP/s")

    # pieces, on one chunk of rows, vmapped over restarts
    xs, weights = model.standardizer().standardize(jnp.asarray(x), jnp.ones(w.n, x.dtype))[0], jnp.ones(w.n, x.dtype)
    params = jax.jit(jax.vmap(lambda kk: model.init(kk, xs, weights)))(fitmod.restart_keys(key, r))
    xc, wc = xs[:chunk], weights[:chunk]

    def vm(f):
        return jax.jit(jax.vmap(f, in_axes=(0, None, None)))

    def log_dens(p, xx, ww):
        return model._weighted_log_density(p, xx)

    def row_axis(lp):
        return 0 if lp.shape[0] == k and lp.shape[-1] != k else 1  # (k, n) or (n, k)

    def resp_of(p, xx, ww):
        lp = model._weighted_log_density(p, xx)
        ax = row_axis(lp)
        ll = logsumexp(lp, axis=ax, keepdims=True)
        return jnp.exp(lp - ll) * (ww if ax == 0 else ww[:, None]), jnp.sum(ll)

    def stats_only(p, xx, resp):
        return gauss.sufficient_stats(xx, resp, p.means, w.covariance_type)

    def e_step(p, xx, ww):
        return model.e_step(p, xx, ww)

    def m_step(p):
        new = model.m_step(model.e_step(p, xc, wc)[0], p)
        return new, model.log_prior(new), model.is_degenerate(new)

    t_ld = bench(vm(log_dens), params, xc, wc)
    t_resp = bench(vm(resp_of), params, xc, wc)
    resp = vm(resp_of)(params, xc, wc)[0]
    t_stats = bench(jax.jit(jax.vmap(stats_only, in_axes=(0, None, 0))), params, xc, resp)
    t_e = bench(vm(e_step), params, xc, wc)
    t_em = bench(jax.jit(jax.vmap(m_step)), params)
    t_m = max(t_em - t_e, 0.0)
    f_chunk = gmm_flops_per_iteration(chunk, k, d, w.covariance_type) * r
    print(f"  pieces per iteration ({n_chunks} chunks x one chunk, vmapped over {r} restarts):")
    for name, t in (("log-densities", t_ld), ("log-densities + logsumexp + resp", t_resp),
                    ("sufficient stats (given resp)", t_stats), ("whole E-step", t_e),
                    ("M-step + prior + degeneracy (E-step subtracted)", t_m)):
        line = f"    {name:50s} {t * n_chunks * 1e3:9.2f} ms"
        if name == "whole E-step":
            line += f"  ({f_chunk / t / 1e9:.2f} GFLOP/s"
            line += f", {100 * f_chunk / t / 1e9 / matmul_gflops:.1f}% of matmul)" if matmul_gflops else ")"
        print(line)
    print(f"    {'one iteration, measured in the fit':50s} {per_iter * 1e3:9.2f} ms")
    if trace_dir:
        path = os.path.join(trace_dir, w.name)
        with jax.profiler.trace(path):
            jax.block_until_ready(compiled(*args))
        print(f"  trace written to {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default="W1,W2,W3")
    p.add_argument("--scale", default="full", choices=("small", "full", "gpu"))
    p.add_argument("--trace", default=None, help="folder for jax.profiler traces")
    args = p.parse_args(argv)
    import run
    mm = run.matmul_rate()
    print(f"float32 matmul 2048^2: {mm['gflops']:.1f} GFLOP/s (best {mm['best_gflops']:.1f}); "
          f"load average {os.getloadavg()[0]:.1f}")
    all_w = wl.workloads(args.scale)
    for name in args.workloads.split(","):
        w = all_w[name.strip()]
        for cov in w.covariance_types or (w.covariance_type,):  # W6: compile only, both types
            profile(dataclasses.replace(w, covariance_type=cov), args.trace, mm["gflops"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
