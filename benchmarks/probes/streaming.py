"""Beyond one device: out-of-core streaming EM and the emulated 8-device sharded program.

``stream``: a GMM (D=8, K=16, full covariances) fitted by :func:`emjax.stream_fit` over a
memory-mapped ``.npy`` file written block by block (never held in memory); prints every pass
(rows/s) and the peak resident memory of the fit: ``VmHWM`` after resetting it, which also
counts the file's pages mapped in, and the sampled peak of ``RssAnon`` (memory the fit
allocated). The issue's size is 100 million rows (3.2 GB of float32)::

    python benchmarks/probes/streaming.py stream --rows 100000000 --file /big/disk/x.npy

``sharded``: re-runs itself with ``--xla_force_host_platform_device_count=8``, shards the rows
over an 8-device data axis, compiles ``emjax.fit`` and lists the collectives of the compiled
program (all-reduces of the statistics, no all-gather of the data) with the fit's time. Emulated
devices share this machine's cores: the time shows the program runs, it is not a speed claim::

    python benchmarks/probes/streaming.py sharded --rows 1000000

Both print one JSON line at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

BLOCK_ROWS = 1 << 20


def write_mixture(path: str, rows: int, d: int, k: int, seed: int = 0) -> None:
    """A K-component mixture written to ``path`` (.npy, float32) one block at a time."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, d))
    for start in range(0, rows, BLOCK_ROWS):
        n = min(BLOCK_ROWS, rows - start)
        out[start:start + n] = centres[rng.integers(k, size=n)] + rng.normal(size=(n, d)).astype(np.float32)
    out.flush()
    del out


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class AnonymousPeak:
    """Largest ``RssAnon`` (memory the process allocated, without the pages of the memory-mapped
    file that ``VmHWM`` also counts) sampled every ``interval`` seconds in a thread."""

    def __init__(self, interval: float = 0.1):
        import threading
        self.peak_mb, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval):
        while not self._stop.wait(interval):
            with open("/proc/self/status") as f:
                kb = next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))
            self.peak_mb = max(self.peak_mb, kb / 1024)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def stream(args) -> dict:
    import jax
    import emjax

    if not os.path.exists(args.file) or np.load(args.file, mmap_mode="r").shape != (args.rows, args.d):
        t = time.perf_counter()
        write_mixture(args.file, args.rows, args.d, args.k)
        print(f"wrote {args.file} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    x = np.load(args.file, mmap_mode="r")
    model = emjax.GaussianMixture(args.k, covariance_type="full")
    # start from a small in-memory subsample, so the passes timed are EM passes
    start = emjax.init_restarts(model, np.asarray(x[:20000]), jax.random.key(0), n_init=args.n_init)
    reset_peak()
    anonymous = AnonymousPeak()
    passes = []
    t = time.perf_counter()
    res = emjax.stream_fit(model, args.file, jax.random.key(0), n_init=args.n_init, init_params=start,
                           max_iter=args.iters, tol=0.0, rows_per_chunk=args.chunk_rows, throw=False,
                           on_pass=lambda r: (emjax.print_progress(r), passes.append(r._asdict())))
    total = time.perf_counter() - t
    em_passes = [p["seconds"] for p in passes if p["phase"] == "em"]
    return dict(kind="stream", rows=args.rows, d=args.d, k=args.k, n_init=args.n_init,
                file_gb=os.path.getsize(args.file) / 1e9, total_s=total, passes=len(passes),
                em_pass_s_median=float(np.median(em_passes[1:] or em_passes)),
                first_pass_s=passes[0]["seconds"], peak_rss_mb=peak_rss_mb(),
                peak_anon_rss_mb=anonymous.stop(),
                objective=float(res.objective), devices=str(jax.devices()[0].device_kind))


def sharded_child(args) -> dict:
    import jax
    from jax.sharding import AxisType
    import emjax
    from emjax.engine.restarts import _fit_jit, _prepare

    x = np.random.default_rng(0).normal(size=(args.rows, args.d)).astype(np.float32)
    x += np.random.default_rng(1).normal(scale=4, size=(args.k, args.d)).astype(np.float32)[
        np.random.default_rng(2).integers(args.k, size=args.rows)]
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    xs, w = emjax.shard(x, mesh)
    model = emjax.GaussianMixture(args.k)
    start = emjax.init_restarts(model, x[:20000], jax.random.key(0), n_init=args.n_init)
    fit_args, static = _prepare(model, xs, jax.random.key(0), args.n_init, w, args.iters, 0.0, None, start)
    t = time.perf_counter()
    compiled = _fit_jit.lower(*fit_args, **static).compile()
    compile_s = time.perf_counter() - t
    hlo = compiled.as_text()
    collectives = {}
    ops = "all-reduce|all-gather|reduce-scatter|all-to-all|collective-permute"
    for shape, op in re.findall(rf"= (\([^=]*?\)|\S+) ({ops})(?:-start)?\(", hlo):
        collectives.setdefault(op, []).append(shape)
    t = time.perf_counter()
    res = jax.block_until_ready(compiled(*fit_args))
    return dict(kind="sharded-emulated", devices=jax.device_count(), rows=args.rows, d=args.d, k=args.k,
                n_init=args.n_init, iters=int(res.n_iter), compile_s=compile_s, run_s=time.perf_counter() - t,
                collectives=collectives, objective=float(res.objective),
                note="8 emulated devices share this CPU: not a speed claim")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("stream", "sharded"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=8)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--iters", type=int, default=3, help="EM iterations (passes) to time")
    parser.add_argument("--n-init", type=int, default=1)
    parser.add_argument("--chunk-rows", type=int, default=None, help="rows per host chunk")
    parser.add_argument("--file", default="/tmp/emjax-stream.npy")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kind == "stream":
        print(json.dumps(stream(args)))
    elif args.child:
        print(json.dumps(sharded_child(args)))
    else:
        env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
        sys.exit(subprocess.run([sys.executable, *sys.argv, "--child"], env=env).returncode)


if __name__ == "__main__":
    main()
