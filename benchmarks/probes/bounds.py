"""What one EM iteration could cost: hand-written E-steps (statistics included) for W1, W2, W3.

    python benchmarks/probes/bounds.py [--workloads W1,W2,W3]

These are not emjax: no restarts bookkeeping, no statuses, no MAP prior, no chunking, and
(for W2/W3) an expanded quadratic form whose rounding error grows with the precision. They
time the same arithmetic in a different *formulation*, to show how far the engine's E-step is
from what XLA can do on this CPU:

* W1 (D=2, 256 restarts vmapped): the quadratic form, log-sum-exp, responsibilities and the
  moments written elementwise on (k, n) arrays: no dot_general, so XLA fuses it into a few
  loops instead of thousands of 2x2 batched matrix products.
  With ``--w1-blocks B`` it also times the same E-step in blocks of B restarts (``lax.map``)
  compiled with ``emjax.core.row_sums.REASSOCIATING_COMPILER_OPTIONS`` and its row sums as one variadic
  reduction: the formulation ``emjax.fit`` now uses for small-D full covariances.
* W2 (full, D=16): "feature" form. With f(x) = [vec(x x^T), x, 1], both the Mahalanobis terms
  (f(x) @ W, W from the precisions) and all statistics (R^T f(x)) are plain GEMMs with long
  contractions; nothing of size N*K*D is written to memory.
* W3 (diag, D=64): expanded form (x*x) @ P^T - 2 x @ (m*P)^T + const and the statistics
  R^T x, R^T (x*x): four GEMMs, as scikit-learn does.
Each prints ms per iteration (median of runs) and GFLOP/s with the same flop count as run.py.

    python benchmarks/probes/bounds.py --expanded-guard

prints, for W2 and W3 fitted by emjax, the rounding guard of the expanded E-step per chunk and the
largest error of the float32 expanded and exact log-densities against float64 (no timing).

    python benchmarks/probes/bounds.py --w3-differences

times formulations of W3's E-step that keep the differences (x - m_k) (rounding that grows like
the result, not like p (x^2 + m^2)), each chunked as the engine chunks, back to back in one
process, with wall and CPU time and the largest deviation from the first:
* "(n,k,d) fused": the former engine, ((x - m) u)^2 summed over the minor axis d, with an
  optimization barrier before the transpose to (k, n); statistics one component at a time;
* "shared z (d,k,n)" / "(k,d,n)": z = (x - m)^2 computed once per chunk with the row axis
  innermost, read twice: Mahalanobis terms sum_d p z and second moments sum_n r z, either as
  dot_generals batched over k or as elementwise sums;
* "per component": the engine now (gaussian.diagonal_mahalanobis): lax.map over components of
  (x - m_k)^2 @ p_k, then the statistics the same way with r_k; "z kept": the squares of the
  first pass stacked for the second instead of recomputed.
"""
from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the probes, then the harness (workloads, scoring, run)

import functools  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.scipy.special import logsumexp  # noqa: E402

import workloads as wl  # noqa: E402
from emjax.core.row_sums import REASSOCIATING_COMPILER_OPTIONS, row_sums  # noqa: E402
from profile_emjax import bench  # noqa: E402
from scoring import gmm_flops_per_iteration  # noqa: E402

EXACT = jax.lax.Precision.HIGHEST

def start_params(key, x, k):
    """Random rows as means, unit precision factors, equal weights."""
    n, d = x.shape
    means = x[jax.random.choice(key, n, (k,), replace=False)]
    return means, jnp.broadcast_to(jnp.eye(d, dtype=x.dtype), (k, d, d)), jnp.full((k,), 1.0 / k, x.dtype)


def _w1_responsibilities(x, means, prec_chol, weights):
    """D=2 responsibilities ``r`` (k, n), the rows ``x0, x1`` and differences ``dx0, dx1`` (k, n),
    and the per-row log-likelihoods."""
    x0, x1 = x[:, 0][None], x[:, 1][None]
    dx0, dx1 = x0 - means[:, 0:1], x1 - means[:, 1:2]
    u = prec_chol
    y0 = dx0 * u[:, 0, 0:1] + dx1 * u[:, 1, 0:1]
    y1 = dx0 * u[:, 0, 1:2] + dx1 * u[:, 1, 1:2]
    log_det = jnp.log(u[:, 0, 0]) + jnp.log(u[:, 1, 1])
    lp = (jnp.log(weights) + log_det - jnp.log(2 * jnp.pi))[:, None] - 0.5 * (y0 * y0 + y1 * y1)
    ll = logsumexp(lp, axis=0)
    return jnp.exp(lp - ll), (x0, x1, dx0, dx1), ll


def w1_elementwise(x, means, prec_chol, weights):
    """One E-step for D=2 on (k, n) arrays; returns (counts, sums, second, loglik)."""
    r, (x0, x1, dx0, dx1), ll = _w1_responsibilities(x, means, prec_chol, weights)
    counts = r.sum(1)
    sums = jnp.stack([(r * x0).sum(1), (r * x1).sum(1)], 1)
    s00, s01, s11 = (r * dx0 * dx0).sum(1), (r * dx0 * dx1).sum(1), (r * dx1 * dx1).sum(1)
    second = jnp.stack([jnp.stack([s00, s01], 1), jnp.stack([s01, s11], 1)], 1)
    return counts, sums, second, ll.sum()


def w1_one_pass(x, means, prec_chol, weights):
    """:func:`w1_elementwise` with the counts, sums and second moments as one variadic row
    reduction (fused with the responsibilities when compiled with reassociation)."""
    r, (x0, x1, dx0, dx1), ll = _w1_responsibilities(x, means, prec_chol, weights)
    return row_sums([r, r * x0, r * x1, r * dx0 * dx0, r * dx0 * dx1, r * dx1 * dx1]), ll.sum()


def features(x):
    n, d = x.shape
    return jnp.concatenate([(x[:, :, None] * x[:, None, :]).reshape(n, d * d), x,
                            jnp.ones((n, 1), x.dtype)], axis=1)


def full_feature_form(x, means, prec_chol, weights):
    """One E-step for full covariances by two GEMMs on f(x) = [vec(x x^T), x, 1]."""
    d = x.shape[1]
    prec = jnp.einsum("kde,kfe->kdf", prec_chol, prec_chol)  # P_k = U_k U_k^T
    pm = jnp.einsum("kdf,kf->kd", prec, means)
    log_det = jnp.sum(jnp.log(jnp.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)
    const = jnp.log(weights) + log_det - 0.5 * d * jnp.log(2 * jnp.pi) - 0.5 * jnp.sum(means * pm, 1)
    w = jnp.concatenate([-0.5 * prec.reshape(-1, d * d), pm, const[:, None]], axis=1)  # (k, d*d+d+1)
    f = features(x)
    lp = f @ w.T  # (n, k)
    ll = logsumexp(lp, axis=1)
    r = jnp.exp(lp - ll[:, None])
    stats = r.T @ f  # (k, d*d+d+1): second moments about 0, sums, counts
    return stats, ll.sum()


def diag_expanded(x, means, prec, weights):
    """One E-step for diagonal covariances by four GEMMs (prec = 1/variances, (k, d))."""
    d = x.shape[1]
    const = (jnp.log(weights) + 0.5 * jnp.sum(jnp.log(prec), 1) - 0.5 * d * jnp.log(2 * jnp.pi)
             - 0.5 * jnp.sum(means * means * prec, 1))
    xx = x * x
    lp = const - 0.5 * (xx @ prec.T) + x @ (means * prec).T
    ll = logsumexp(lp, axis=1)
    r = jnp.exp(lp - ll[:, None])
    return r.sum(0), r.T @ x, r.T @ xx, ll.sum()


def _diag_log_density(maha, var, log_weights):
    d = var.shape[1]
    return (log_weights - 0.5 * jnp.sum(jnp.log(var), 1) - 0.5 * d * jnp.log(2 * jnp.pi))[:, None] - 0.5 * maha


def _diag_stats(x, lp, w, second):
    ll = logsumexp(lp, axis=0)
    r = jnp.exp(lp - ll) * w
    return (jnp.sum(r, 1), jnp.matmul(r, x, precision=EXACT), second(r)), jnp.sum(w * ll)


def diag_fused_nkd(x, w, means, var, log_weights):
    """The former engine: fused (n, k, d) differences, minor-axis sum, barrier, transpose."""
    y = (x[:, None, :] - means[None]) / jnp.sqrt(var)[None]
    maha = jax.lax.optimization_barrier(jnp.sum(y * y, axis=2)).T
    per_component = lambda r: jax.lax.map(lambda ra: jnp.matmul(ra[0], jnp.square(x - ra[1]), precision=EXACT), (r, means))
    return _diag_stats(x, _diag_log_density(maha, var, log_weights), w, per_component)


def diag_shared_z(x, w, means, var, log_weights, layout="dkn", reduce="dot"):
    """z = (x - m)^2 once per chunk, row axis innermost, read for both the Mahalanobis terms and
    the second moments."""
    prec = 1 / var
    if layout == "dkn":
        z = jnp.square(x.T[:, None, :] - means.T[:, :, None])
        maha = (jnp.einsum("dk,dkn->kn", prec.T, z, precision=EXACT) if reduce == "dot"
                else jnp.sum(prec.T[:, :, None] * z, axis=0))
        second = lambda r: jnp.einsum("kn,dkn->kd", r, z, precision=EXACT)
    else:
        z = jnp.square(x.T[None] - means[:, :, None])
        maha = (jnp.einsum("kd,kdn->kn", prec, z, precision=EXACT) if reduce == "dot"
                else jnp.sum(prec[:, :, None] * z, axis=1))
        second = lambda r: jnp.einsum("kn,kdn->kd", r, z, precision=EXACT)
    return _diag_stats(x, _diag_log_density(maha, var, log_weights), w, second)


def diag_per_component(x, w, means, var, log_weights):
    """The engine now: lax.map over components of matrix-vector products of squared differences."""
    maha = jax.lax.map(lambda mp: jnp.matmul(jnp.square(x - mp[0]), mp[1], precision=EXACT), (means, 1 / var))
    per_component = lambda r: jax.lax.map(lambda ra: jnp.matmul(ra[0], jnp.square(x - ra[1]), precision=EXACT), (r, means))
    return _diag_stats(x, _diag_log_density(maha, var, log_weights), w, per_component)


def diag_per_component_stored(x, w, means, var, log_weights):
    """As :func:`diag_per_component`, with each component's (x - m_k)^2 kept from the first pass
    for the second (a (k, n, d) buffer per chunk) instead of recomputed."""
    def one(mp):
        z = jnp.square(x - mp[0])
        return jnp.matmul(z, mp[1], precision=EXACT), z
    maha, z = jax.lax.map(one, (means, 1 / var))
    stored = lambda r: jax.lax.map(lambda rz: jnp.matmul(rz[0], rz[1], precision=EXACT), (r, z))
    return _diag_stats(x, _diag_log_density(maha, var, log_weights), w, stored)


def _timed(fn, *args, runs=5):
    """Median ``(wall, cpu)`` seconds of ``fn(*args)`` after one warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return sorted(times)[runs // 2]


def w3_differences(scale: str, chunks=(256, 512)):
    """Print wall/CPU ms per W3 E-step (with statistics) for each differences formulation."""
    from emjax.core.chunking import chunked_sum
    w = wl.workloads(scale)["W3"]
    x = jnp.asarray(wl.data_for(w))
    x = (x - x.mean(0)) / x.std(0)
    key = jax.random.key(0)
    means = x[jax.random.choice(key, w.n, (w.k,), replace=False)]
    var = jax.random.uniform(jax.random.key(1), (w.k, w.d), x.dtype, 0.3, 1.5)
    log_weights = jnp.full((w.k,), -jnp.log(w.k), x.dtype)
    weights = jnp.ones((w.n,), x.dtype)
    variants = {"(n,k,d) fused": diag_fused_nkd, "per component": diag_per_component,
                "per component, z kept": diag_per_component_stored}
    for layout in ("dkn", "kdn"):
        for reduce in ("dot", "sum"):
            variants[f"shared z ({','.join(layout)}) {reduce}"] = functools.partial(
                diag_shared_z, layout=layout, reduce=reduce)
    reference = None
    for chunk in chunks:
        for name, fn in variants.items():
            step = jax.jit(lambda x, w, m, v, fn=fn, chunk=chunk: chunked_sum(
                lambda xc, wc: fn(xc, wc, m, v, log_weights), x, w, min(chunk, w.shape[0])))
            wall, cpu = _timed(step, x, weights, means, var)
            out = jax.tree_util.tree_leaves(step(x, weights, means, var))
            reference = out if reference is None else reference
            dev = max(float(jnp.max(jnp.abs(a - b) / (jnp.abs(b) + 1e-3 * jnp.max(jnp.abs(b)))))
                      for a, b in zip(out, reference))
            print(f"W3 {name:22s} chunk {chunk:4d}: {wall * 1e3:7.1f} ms wall, {cpu * 1e3:7.1f} ms CPU "
                  f"per E-step (max relative deviation from the first {dev:.1e})", flush=True)


def expanded_guard(names, n_rows=20_000, chunk=8192):
    """Print, for W2/W3 fitted by emjax (20 iterations, one restart), the rounding guard G of
    emjax.components.gaussian_expanded per chunk of the standardised rows, and the error of the
    float32 expanded and exact log-densities on the first ``n_rows`` rows against float64."""
    import emjax
    from emjax.components import gaussian as g
    from emjax.components import gaussian_expanded as ge
    for name in names:
        w = wl.workloads("full")[name]
        ct = w.covariance_type
        x = wl.data_for(w)
        model = emjax.GaussianMixture(w.k, covariance_type=ct)
        res = emjax.fit(model, x, jax.random.key(0), max_iter=w.max_iter, tol=0.0, throw=False)
        shift, scale = x.mean(0), x.std(0)
        xs = jnp.asarray((x - shift) / scale)
        p = model.standardizer().params_to_standard(res.params, g.Affine(jnp.asarray(shift), jnp.asarray(scale)))
        u = g.precision_cholesky(p.covariances, ct)
        guard = [float(ge.expansion_error(xs[i:i + chunk], p.means, u, ct)) for i in range(0, w.n, chunk)]
        rows = xs[:n_rows]
        expanded = ge.log_density(ge.features(rows, ct, ge.origin(p.means)), ge.log_density_weights(p.means, u, ct))
        exact = g.log_density(rows, p.means, u, ct)
        with jax.enable_x64(True):
            as64 = lambda a: jnp.asarray(np.asarray(a), jnp.float64)
            u64 = g.precision_cholesky(as64(p.covariances), ct)
            want = np.asarray(g.log_density(as64(rows), as64(p.means), u64, ct))
        err = lambda got: np.max(np.abs(np.asarray(got, np.float64) - want))
        print(f"{name}: guard G per {chunk}-row chunk: median {np.median(guard):.2e}, max {max(guard):.2e} "
              f"(threshold {ge.MAX_EXPANSION_ERROR:.0e}); largest log-density error over {n_rows} rows: "
              f"expanded {err(expanded):.1e}, exact {err(exact):.1e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default="W1,W2,W3")
    p.add_argument("--scale", default="full", choices=("small", "full"))
    p.add_argument("--w3-differences", action="store_true",
                   help="time W3's E-step in formulations that keep the differences (see above)")
    p.add_argument("--w1-blocks", type=int, default=0, help="also time W1 in blocks of this many restarts")
    p.add_argument("--expanded-guard", action="store_true",
                   help="W2/W3: the expanded E-step's rounding guard and its actual error (no timing)")
    args = p.parse_args(argv)
    if args.expanded_guard:
        expanded_guard([n for n in args.workloads.split(",") if n in ("W2", "W3")])
        return 0
    if args.w3_differences:
        print(f"load average {os.getloadavg()[0]:.1f}")
        w3_differences(args.scale)
        return 0
    import run
    mm = run.matmul_rate()
    print(f"float32 matmul 2048^2: {mm['gflops']:.1f} GFLOP/s; load average {os.getloadavg()[0]:.1f}")
    ws = wl.workloads(args.scale)
    key = jax.random.key(0)
    for name in args.workloads.split(","):
        w = ws[name]
        x = jnp.asarray(wl.data_for(w))
        x = (x - x.mean(0)) / x.std(0)
        flops = gmm_flops_per_iteration(w.n, w.k, w.d, w.covariance_type) * w.n_init
        if name == "W1":
            keys = jax.random.split(key, w.n_init)
            params = jax.vmap(lambda kk: start_params(kk, x, w.k))(keys)
            fn = jax.jit(jax.vmap(w1_elementwise, in_axes=(None, 0, 0, 0)))
            t = bench(fn, x, *params)
            what = f"elementwise E-step+stats, vmapped over {w.n_init} restarts"
            if args.w1_blocks:
                blocked = lambda x, *p: jax.lax.map(lambda q: w1_one_pass(x, *q), p,
                                                    batch_size=args.w1_blocks)
                tb = bench(jax.jit(blocked, compiler_options=REASSOCIATING_COMPILER_OPTIONS), x, *params)
                print(f"W1: one-pass E-step+stats in blocks of {args.w1_blocks} restarts, reassociating: "
                      f"{tb * 1e3:.2f} ms per iteration")
        elif w.covariance_type == "full":
            params = start_params(key, x, w.k)
            t = bench(jax.jit(full_feature_form), x, *params)
            what = "feature-form E-step+stats (2 GEMMs, f(x) built in the step)"
        else:
            means, _, weights = start_params(key, x, w.k)
            prec = jnp.ones((w.k, w.d), x.dtype)
            t = bench(jax.jit(diag_expanded), x, means, prec, weights)
            what = "expanded diag E-step+stats (4 GEMMs)"
        print(f"{name}: {what}: {t * 1e3:.2f} ms per iteration = {flops / t / 1e9:.1f} GFLOP/s "
              f"({100 * flops / t / 1e9 / mm['gflops']:.0f}% of matmul); x{w.max_iter} iterations "
              f"= {t * w.max_iter:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
