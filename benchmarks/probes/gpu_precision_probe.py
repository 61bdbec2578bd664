"""Per-iteration time and float32 accuracy of matmul precision variants on a GPU (W2, W3, W1).

Run on a CUDA machine: `python benchmarks/probes/gpu_precision_probe.py` (pass any argument for a small CPU
smoke run; CPU supports only HIGHEST/DEFAULT/BF16x6, the others report FAILED). Results for an H200
are in results/archive/2026-11-26-0405_3885ce3_h200_precision-probe.txt and docs/guide/benchmarks.md.
"""
import functools, importlib, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the harness (workloads)
import numpy as np
import jax, jax.numpy as jnp
import emjax, workloads as wl
fitmod = importlib.import_module("emjax.engine.restarts")
g = importlib.import_module("emjax.components.gaussian")
A = jax.lax.DotAlgorithmPreset
VARIANTS = {"HIGHEST": jax.lax.Precision.HIGHEST, "TF32x3": A.TF32_TF32_F32_X3,
            "BF16x6": A.BF16_BF16_F32_X6, "BF16x9": A.BF16_BF16_F32_X9, "DEFAULT": None}

def use(v):
    g.EXACT = VARIANTS[v]
    g._mm = functools.partial(jnp.matmul, precision=VARIANTS[v])

def timed(model, x, n_init, max_iter, chunk=None):
    args, static = fitmod._prepare(model, x, jax.random.key(0), n_init, None, max_iter, 0.0, chunk, None)
    t0 = time.perf_counter(); f = fitmod._fit_jit.lower(*args, **static).compile(); tc = time.perf_counter() - t0
    r = jax.block_until_ready(f(*args))
    t0 = time.perf_counter(); r = jax.block_until_ready(f(*args)); t = time.perf_counter() - t0
    return t, tc, r, static["plan"].chunk_size

def ref_logdens(x, means, covs, ctype):
    x = np.asarray(x, np.float64); out = []
    for m, c in zip(np.asarray(means, np.float64), np.asarray(covs, np.float64)):
        c = c if ctype == "full" else np.diag(c)
        L = np.linalg.cholesky(c); z = np.linalg.solve(L, (x - m).T)
        out.append(-0.5 * (np.sum(z * z, 0) + 2 * np.log(np.diag(L)).sum() + len(m) * np.log(2 * np.pi)))
    return np.stack(out)

SMALL = len(sys.argv) > 1
for name, scale, variants in (("W2", "small" if SMALL else "gpu", ("HIGHEST", "TF32x3", "BF16x6", "BF16x9", "DEFAULT")),
                              ("W3", "small" if SMALL else "full", ("HIGHEST", "TF32x3", "DEFAULT")),
                              ("W1", "small" if SMALL else "gpu", ("HIGHEST", "TF32x3"))):
    w = wl.workloads(scale)[name]
    x = jnp.asarray(wl.data_for(w)); model = emjax.GaussianMixture(w.k, w.covariance_type)
    ref = None
    for v in variants:
        try:
            use(v); jax.clear_caches()
            t1, c1, r1, ch = timed(model, x, w.n_init, 1)
            tn, cn, rn, _ = timed(model, x, w.n_init, w.max_iter + 1)
            p = rn.params
            sub = np.asarray(x[:20000])
            if ref is None:
                ref = ref_logdens(sub, p.means, p.covariances, w.covariance_type)
                refp = p
            ld = np.asarray(g.log_density(jnp.asarray(sub), refp.means, g.precision_cholesky(refp.covariances, w.covariance_type), w.covariance_type))
            err = np.max(np.abs(ld - ref))
            print(f"{name} {v:8s} chunk {ch}: per-iter {(tn - t1) / w.max_iter * 1e3:8.2f} ms  fit(1 it) {t1:.3f} s  "
                  f"compile {cn:.1f} s  objective {float(np.max(np.asarray(rn.objective))):.6f}  "
                  f"max|logdens err| vs f64 {err:.2e}", flush=True)
        except Exception as e:
            print(f"{name} {v}: FAILED {type(e).__name__}: {str(e)[:200]}", flush=True)
