"""W6: peak resident memory of one fit, in a fresh process per (library, covariance type).

The child imports the library, records its resident set (the baseline: interpreter, library and
runtime), generates the data itself (float32, in small blocks), resets the kernel's high-water
mark (``/proc/self/clear_refs``), runs one fit and reports ``VmHWM``: the peak resident memory
during the fit, data included. The parent polls the child's RSS and kills it past a limit (the
machine has no swap: past ~20 GB the kernel would kill something less deliberately).

The data are generated in blocks whose float64 temporaries glibc would keep as free heap (about
0.13x the data at 10M x 8, counted in the peak though no library allocated it); the child hands
that back to the kernel (``malloc_trim``) before measuring, so the figures start from the data
alone, as when a user loads them from a file.

The data are either NumPy's own allocation ("numpy": usually 16-byte aligned, so JAX's CPU
client copies it into a buffer of its own) or a copy made into a 64-byte-aligned buffer before the
peak is reset ("aligned": ``jax.device_put`` then shares the host memory, no copy).

Run as ``python benchmarks/memory.py LIB COVARIANCE_TYPE N D K ITERS [numpy|aligned]`` (child
mode, one JSON line), or ``python benchmarks/memory.py --report [N D K ITERS]`` for emjax with
both covariance types and both layouts, one fresh process each (a table). For emjax the child
also fits once more with the compiled program reused and reports that
fit's peak above the resident memory just before it (``refit_*``): the fit's own working memory,
without XLA's one-time compilation.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _fit_once(lib: str, w, x):
    """One fit of ``x`` with one restart and ``w.max_iter`` iterations; blocks until done."""
    import numpy as np

    if lib == "emjax":
        import jax

        import emjax
        model = emjax.GaussianMixture(w.k, covariance_type=w.covariance_type)
        r = emjax.fit(model, x, jax.random.key(0), n_init=1, max_iter=w.max_iter, tol=0.0, throw=False)
        jax.block_until_ready(r)
        return int(r.n_iter), emjax.core.status.describe(np.asarray(r.restarts.status))
    if lib == "sklearn":
        from peers import _sklearn_fit
        g = _sklearn_fit(w, x, 1, w.max_iter)
        return int(g.n_iter_), ""
    if lib == "gmmx":
        import jax

        from peers import gmmx_single_fit
        out = jax.jit(gmmx_single_fit(w))(x, jax.random.key(0))
        jax.block_until_ready(out)
        return int(out[-1]), ""
    if lib == "pomegranate":
        import math

        import torch
        from pomegranate.distributions import Normal
        from pomegranate.gmm import GeneralMixtureModel
        model = GeneralMixtureModel([Normal(covariance_type=w.covariance_type) for _ in range(w.k)],
                                    max_iter=w.max_iter, tol=-math.inf, random_state=0)
        model.fit(torch.from_numpy(x))
        return w.max_iter, ""
    raise ValueError(f"unknown library {lib!r}")


def _import(lib: str) -> None:
    if lib in ("emjax", "gmmx"):
        import jax
        jax.numpy.zeros(1).block_until_ready()  # start the runtime before the baseline
        __import__(lib)
    elif lib == "sklearn":
        import sklearn.mixture  # noqa: F401
    else:
        import pomegranate.gmm  # noqa: F401
        import torch  # noqa: F401


#: Alignment (bytes) under which JAX's CPU client uses a host buffer without copying it.
ALIGNMENT = 64


def aligned_copy(x):
    """``x`` copied into a buffer that starts on an ``ALIGNMENT``-byte boundary."""
    import numpy as np
    raw = np.empty(x.nbytes + ALIGNMENT, np.uint8)
    offset = -raw.ctypes.data % ALIGNMENT
    out = raw[offset:offset + x.nbytes].view(x.dtype).reshape(x.shape)
    out[...] = x
    return out


def _trim_free_heap() -> None:
    """Returns glibc's free heap to the kernel (no-op where there is no glibc)."""
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def child(lib: str, covariance_type: str, n: int, d: int, k: int, iters: int,
          layout: str = "numpy") -> dict:
    import workloads
    w = workloads.Workload("W6", "memory", n, d, k, covariance_type, 1, iters)
    _import(lib)
    baseline = _status_kb("VmRSS") * 1024
    x = workloads.sample((workloads.SEED, 6), n, k, d, axis_aligned=covariance_type == "diag")
    if layout == "aligned":
        x = aligned_copy(x)
    _trim_free_heap()  # the generator's temporaries, not the library's
    with_data = _status_kb("VmRSS") * 1024
    reset = _reset_peak()
    start = time.perf_counter()
    n_iter, statuses = _fit_once(lib, w, x)
    wall = time.perf_counter() - start
    peak = _status_kb("VmHWM") * 1024
    refit = {}
    if lib == "emjax":  # the same fit again: compiled program reused, so no compilation memory
        before = _status_kb("VmRSS") * 1024
        _reset_peak()
        _fit_once(lib, w, x)
        refit = {"refit_rss_before": before, "refit_peak_rss": _status_kb("VmHWM") * 1024}
    return dict(baseline_rss=baseline, rss_with_data=with_data, peak_rss=peak, **refit,
                peak_is_fit_only=reset, data_bytes=int(x.nbytes), fit_wall_s=wall, n_iter=n_iter,
                statuses=statuses, data_layout=layout,
                data_address_mod_64=int(x.ctypes.data % ALIGNMENT))


def measure(lib: str, w, covariance_type: str, limit_bytes: int, timeout_s: float,
            layout: str = "numpy") -> dict:
    """Runs the child; returns its report, or raises RuntimeError with the reason it failed."""
    import psutil

    cmd = [sys.executable, os.path.abspath(__file__), lib, covariance_type,
           str(w.n), str(w.d), str(w.k), str(w.max_iter), layout]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps, start, seen, killed = psutil.Process(proc.pid), time.perf_counter(), 0, None
    while proc.poll() is None:
        try:
            seen = max(seen, ps.memory_info().rss)
        except psutil.Error:
            pass
        if seen > limit_bytes:
            killed = f"killed: resident memory passed the {limit_bytes / 2**30:.0f} GiB limit"
        elif time.perf_counter() - start > timeout_s:
            killed = f"killed: still running after {timeout_s:.0f} s"
        if killed:
            proc.kill()
            break
        time.sleep(0.05)
    out, err = proc.communicate()
    if killed:
        raise RuntimeError(f"{killed} (peak seen {seen / 2**30:.2f} GiB)")
    if proc.returncode != 0:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"exit code {proc.returncode}: {tail}")
    report = json.loads(out.strip().splitlines()[-1])
    report["polled_peak_rss"] = seen
    return report


def report(n: int = 10_000_000, d: int = 8, k: int = 16, iters: int = 5) -> None:
    """emjax's peak over the data for both covariance types and both data layouts (a table)."""
    import workloads
    print("| covariance | layout | data address mod 64 | data (MiB) | baseline (MiB) | peak (MiB) "
          "| resident with the data, above baseline / data | (peak - baseline) / data "
          "| second fit: peak above RSS before it / data | fit wall (s) | statuses |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for covariance_type in ("diag", "full"):
        w = workloads.Workload("W6", "memory", n, d, k, covariance_type, 1, iters)
        for layout in ("numpy", "aligned"):
            r = measure("emjax", w, covariance_type, 16 << 30, 1800, layout)
            mib = lambda b: f"{b / 2**20:.0f}"
            above = (r["peak_rss"] - r["baseline_rss"]) / r["data_bytes"]
            print(f"| {covariance_type} | {layout} | {r['data_address_mod_64']} | {mib(r['data_bytes'])} "
                  f"| {mib(r['baseline_rss'])} | {mib(r['peak_rss'])} "
                  f"| {(r['rss_with_data'] - r['baseline_rss']) / r['data_bytes']:.2f} | {above:.2f} "
                  f"| {(r['refit_peak_rss'] - r['refit_rss_before']) / r['data_bytes']:.2f} "
                  f"| {r['fit_wall_s']:.1f} | {r['statuses']} |", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--report"]:
        report(*map(int, sys.argv[2:6]))
    else:
        lib_, cov_, n_, d_, k_, iters_ = sys.argv[1:7]
        layout_ = sys.argv[7] if len(sys.argv) > 7 else "numpy"
        print(json.dumps(child(lib_, cov_, int(n_), int(d_), int(k_), int(iters_), layout_)))
