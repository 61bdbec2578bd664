"""One runner per library: fit a workload's data with tol=0 (a fixed iteration count) and time it.

Every runner returns a dict with the measured fields (see ``run.py``'s record). Libraries that
fit restarts or datasets one after another on the host (scikit-learn, pomegranate) may time a
subset of the restarts/datasets when the whole would take far longer than ``budget_s``; the wall
time is then scaled linearly to the full count and ``measured_units`` says what was run.
"""
from __future__ import annotations

import contextlib
import math
import time
import warnings

import numpy as np

from scoring import hmm_mean_loglik, mean_loglik, median, timed_runs

REG_COVAR = 1e-6
#: Sequences per chunk of emjax's E-step when many HMM restarts run at once (W4R).
HMM_RESTART_CHUNK = 16


def _record(w, walls, cpus, *, compile_s, n_iter, units_run, loglik, notes="", **extra):
    """Fields common to every runner; wall and CPU times are scaled to the full workload."""
    units_full = w.n_init * w.n_datasets
    factor = units_full / units_run
    wall = median(walls) * factor
    return dict(
        wall_s=wall, cpu_s=median(cpus) * factor, wall_runs_s=walls, compile_s=compile_s,
        n_iter=n_iter, restarts=w.n_init, datasets=w.n_datasets, measured_units=units_run,
        full_units=units_full, scaled=factor != 1,
        restart_iters_per_s=units_full * w.max_iter / wall, loglik=loglik, notes=notes, **extra)


def _subset_size(probe_s: float, units: int, budget_s: float) -> int:
    """How many restarts/datasets fit in ``budget_s`` given one took ``probe_s``."""
    return max(1, min(units, int(budget_s // max(probe_s, 1e-9))))


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------------------- emjax
def run_emjax(w, x, repeats: int, budget_s: float) -> dict:
    if w.n_steps:
        return run_emjax_hmm(w, x, repeats, budget_s)
    import jax
    import jax.numpy as jnp

    import emjax

    model = emjax.GaussianMixture(w.k, covariance_type=w.covariance_type)
    key = jax.random.key(0)
    opts = dict(max_iter=w.max_iter, tol=0.0, throw=False)
    if w.n_datasets == 1:
        xj = jnp.asarray(x)  # on the device once, as gmmx gets it; fit checks it there
        result, compile_s, first_s = emjax.timed_fit(model, xj, key, n_init=w.n_init, **opts)
        walls, cpus, result = timed_runs(
            lambda: jax.block_until_ready(emjax.fit(model, xj, key, n_init=w.n_init, **opts)), repeats)
        status = np.asarray(result.restarts.status)
        n_iter = np.asarray(result.restarts.n_iter)
        params = result.params
        loglik = mean_loglik(x, params.weights, params.means, params.covariances, w.covariance_type)
        return _record(w, walls, cpus, compile_s=compile_s, n_iter=float(n_iter.mean()),
                       units_run=w.n_init, loglik=loglik, first_run_s=first_s,
                       statuses=emjax.core.status.describe(status),
                       emjax_loglik=float(result.log_likelihood))

    fit_all = jax.jit(jax.vmap(lambda xd, k: emjax.fit(model, xd, k, n_init=1, **opts)))
    xj = jnp.asarray(x)
    keys = jax.random.split(key, w.n_datasets)
    start = time.perf_counter()
    compiled = fit_all.lower(xj, keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(xj, keys))
    first_s = time.perf_counter() - start
    walls, cpus, result = timed_runs(lambda: jax.block_until_ready(compiled(xj, keys)), repeats)
    p = jax.tree_util.tree_map(np.asarray, result.params)
    per_dataset = [mean_loglik(x[i], p.weights[i], p.means[i], p.covariances[i], w.covariance_type)
                   for i in range(w.n_datasets)]
    return _record(w, walls, cpus, compile_s=compile_s, n_iter=float(np.mean(result.n_iter)),
                   units_run=w.n_datasets, loglik=float(np.mean(per_dataset)),
                   per_dataset_loglik=per_dataset, first_run_s=first_s,
                   statuses=emjax.core.status.describe(np.asarray(result.status)))


# --------------------------------------------------------------------------------- scikit-learn
def _sklearn_fit(w, x, n_init, max_iter, seed=0):
    from sklearn.mixture import GaussianMixture

    with _quiet():
        return GaussianMixture(w.k, covariance_type=w.covariance_type, n_init=n_init,
                               max_iter=max_iter, tol=0.0, reg_covar=REG_COVAR,
                               init_params="k-means++", random_state=seed).fit(x)


@contextlib.contextmanager
def _blas_one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@contextlib.contextmanager
def _torch_one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _blas_one_thread():
            yield
    finally:
        torch.set_num_threads(before)


def _host_runner(w, x, repeats, budget_s, fit_restarts, score, one_thread):
    """Shared driver for host libraries that loop restarts/datasets in Python.

    ``fit_restarts(x, n_init, max_iter)`` fits one dataset with ``n_init`` restarts and returns
    ``(model, n_iter)``; ``score(x, model)`` gives the common mean log-likelihood. The peer runs
    with its default threads or with one thread (``one_thread()``), whichever was faster on a
    probe: on a small problem and a busy 2-core machine, multi-threaded BLAS can be several
    times slower than one thread.
    """
    units = w.n_init * w.n_datasets
    one = x[0] if w.n_datasets > 1 else x
    fit_restarts(one, 1, min(2, w.max_iter))  # warm-up: lazy imports, JIT caches, thread pools
    # probe: one restart / dataset at full length when several are timed, else 2 iterations
    probe_iter = w.max_iter if units > 1 else min(2, w.max_iter)
    modes = {"default threads": contextlib.nullcontext, "1 thread": one_thread}
    probes = {mode: math.inf for mode in modes}
    for _ in range(2):  # twice, alternating: the best of two per mode
        for mode, ctx in modes.items():
            with ctx():
                t0 = time.perf_counter()
                fit_restarts(one, 1, probe_iter)
                probes[mode] = min(probes[mode], time.perf_counter() - t0)
    mode = min(probes, key=probes.get)
    m = _subset_size(probes[mode], units, budget_s) if units > 1 else 1
    if w.n_datasets > 1:
        def job():
            return [fit_restarts(x[i], 1, w.max_iter) for i in range(m)]
    else:
        def job():
            return [fit_restarts(x, m, w.max_iter)]
    with modes[mode]():
        walls, cpus, fitted = timed_runs(job, repeats)
    notes = [mode + " (faster on a probe: " + ", ".join(f"{k} {v:.3g} s" for k, v in probes.items()) + ")"]
    if m < units:
        what = "datasets" if w.n_datasets > 1 else "restarts"
        notes.append(f"timed {m} of {units} {what}, wall scaled x{units / m:.4g}")
    if w.n_datasets > 1:
        per_dataset = [score(x[i], model) for i, (model, _) in enumerate(fitted)]
        loglik = float(np.mean(per_dataset))
        extra = dict(per_dataset_loglik=per_dataset)
    else:
        loglik, extra = score(x, fitted[0][0]), {}
    n_iter = float(np.mean([it for _, it in fitted]))
    return _record(w, walls, cpus, compile_s=None, n_iter=n_iter, units_run=m, loglik=loglik,
                   notes="; ".join(notes), threads=mode, thread_probe_s=probes, **extra)


def run_sklearn(w, x, repeats: int, budget_s: float) -> dict:
    def fit_restarts(xd, n_init, max_iter):
        g = _sklearn_fit(w, xd, n_init, max_iter)
        return g, g.n_iter_

    def score(xd, g):
        return mean_loglik(xd, g.weights_, g.means_, g.covariances_, w.covariance_type)

    return _host_runner(w, x, repeats, budget_s, fit_restarts, score, _blas_one_thread)


# ---------------------------------------------------------------------------------- pomegranate
def run_pomegranate(w, x, repeats: int, budget_s: float) -> dict:
    import torch
    from pomegranate.distributions import Normal
    from pomegranate.gmm import GeneralMixtureModel

    def params(model):
        weights = model.priors.detach().numpy()
        means = np.stack([d.means.detach().numpy() for d in model.distributions])
        covs = np.stack([d.covs.detach().numpy() for d in model.distributions])
        return weights, means, covs

    def fit_restarts(xd, n_init, max_iter):
        # pomegranate has no n_init: loop restarts as a user would; tol=-inf because its loop
        # stops when the improvement is below tol, and with tol=0 a rounding-level decrease stops it.
        xt = torch.from_numpy(np.ascontiguousarray(xd))
        fitted = []
        for r in range(n_init):
            model = GeneralMixtureModel(
                [Normal(covariance_type=w.covariance_type) for _ in range(w.k)],
                max_iter=max_iter, tol=-math.inf, random_state=r)
            with _quiet():
                fitted.append(model.fit(xt))
        return fitted, max_iter

    def score(xd, fitted):
        return max((mean_loglik(xd, *params(m), w.covariance_type) for m in fitted),
                   key=lambda v: -math.inf if math.isnan(v) else v)

    return _host_runner(w, x, repeats, budget_s, fit_restarts, score, _torch_one_thread)


# ----------------------------------------------------------------------------------------- gmmx
def gmmx_single_fit(w):
    """``one(x, key) -> (weights, means, covariances, loglik, n_iter)``: one gmmx fit."""
    import jax
    import jax.numpy as jnp
    from gmmx import EMFitter, GaussianMixtureModelJax

    fitter = EMFitter(max_iter=w.max_iter, tol=0.0, reg_covar=REG_COVAR)
    k, d, full = w.k, w.d, w.covariance_type == "full"

    def one(xd, key):
        idx = jax.random.choice(key, xd.shape[0], (k,), replace=False)
        centred = xd - jnp.mean(xd, axis=0)
        if full:
            cov = jnp.broadcast_to(centred.T @ centred / xd.shape[0], (k, d, d))
        else:
            cov = jnp.broadcast_to(jnp.mean(centred * centred, axis=0), (k, d))
        gmm = GaussianMixtureModelJax.from_squeezed(
            means=xd[idx], covariances=cov, weights=jnp.full((k,), 1.0 / k, xd.dtype),
            covariance_type=w.covariance_type)
        res = fitter.fit(xd, gmm)
        g = res.gmm
        covs = g.covariances.values[0] if full else g.covariances.values[0, :, :, 0]
        return g.weights[0, :, 0, 0], g.means[0, :, :, 0], covs, res.log_likelihood, res.n_iter

    return one


def run_gmmx(w, x, repeats: int, budget_s: float) -> dict:
    """gmmx's EMFitter, ``vmap``-ed by hand over restarts (or datasets), as a user would.

    A restart starts from K distinct random rows as means, the data's covariance (its diagonal
    for diag) for every component and equal weights; gmmx's own init runs scikit-learn's KMeans on
    the host and cannot be vmapped.
    """
    import jax
    import jax.numpy as jnp

    one = gmmx_single_fit(w)
    xj = jnp.asarray(x)
    if w.n_datasets > 1:
        batched = jax.jit(jax.vmap(one))
        args = (xj, jax.random.split(jax.random.key(0), w.n_datasets))
    else:
        batched = jax.jit(jax.vmap(one, in_axes=(None, 0)))
        args = (xj, jax.random.split(jax.random.key(0), w.n_init))
    start = time.perf_counter()
    compiled = batched.lower(*args).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))  # warm-up
    walls, cpus, out = timed_runs(lambda: jax.block_until_ready(compiled(*args)), repeats)
    weights, means, covs, ll, n_iter = (np.asarray(v) for v in out)
    if w.n_datasets > 1:
        per_dataset = [mean_loglik(x[i], weights[i], means[i], covs[i], w.covariance_type)
                       for i in range(w.n_datasets)]
        return _record(w, walls, cpus, compile_s=compile_s, n_iter=float(n_iter.mean()),
                       units_run=w.n_datasets, loglik=float(np.mean(per_dataset)),
                       per_dataset_loglik=per_dataset)
    best = int(np.argmax(np.where(np.isfinite(ll), ll, -np.inf)))
    loglik = mean_loglik(x, weights[best], means[best], covs[best], w.covariance_type)
    return _record(w, walls, cpus, compile_s=compile_s, n_iter=float(n_iter.mean()),
                   units_run=w.n_init, loglik=loglik,
                   notes="init: random rows as means, data covariance (not gmmx's host k-means)")


# ----------------------------------------------------------------------- HMMs (W4, W4R)
def run_emjax_hmm(w, data, repeats: int, budget_s: float) -> dict:
    """emjax.GaussianHMM through emjax.fit: all restarts in one program."""
    import jax

    import emjax

    model = emjax.GaussianHMM(w.k, covariance_type=w.covariance_type)
    key = jax.random.key(0)
    # many restarts (W4R): every restart holds (steps, sequences, states) buffers, so the
    # sequences are scanned HMM_RESTART_CHUNK at a time (bounded memory, and faster here)
    chunk = HMM_RESTART_CHUNK if w.n_init > 1 else None
    opts = dict(n_init=w.n_init, max_iter=w.max_iter, tol=0.0, throw=False, chunk_size=chunk)
    result, compile_s, first_s = emjax.timed_fit(model, data, key, **opts)
    walls, cpus, result = timed_runs(lambda: jax.block_until_ready(emjax.fit(model, data, key, **opts)),
                                     repeats)
    p = result.params
    loglik = hmm_mean_loglik(*data, p.initial, p.transitions, p.emission.means, p.emission.covariances)
    return _record(w, walls, cpus, compile_s=compile_s, n_iter=float(np.mean(result.restarts.n_iter)),
                   units_run=w.n_init, loglik=loglik, first_run_s=first_s,
                   statuses=emjax.core.status.describe(np.asarray(result.restarts.status)),
                   notes=f"chunk_size={chunk} sequences" if chunk else "")


def _hmmlearn_runner(implementation):
    def run(w, data, repeats: int, budget_s: float) -> dict:
        from hmmlearn.hmm import GaussianHMM

        x, lengths = data
        flat = np.concatenate([xs[:n] for xs, n in zip(x, lengths)]).astype(np.float64)

        def fit_restarts(_, n_init, max_iter):
            fitted = []
            for r in range(n_init):
                with _quiet():
                    fitted.append(GaussianHMM(w.k, covariance_type=w.covariance_type, n_iter=max_iter,
                                              tol=-math.inf, random_state=r,
                                              implementation=implementation).fit(flat, lengths))
            return fitted, max_iter

        def score(_, fitted):
            return max((hmm_mean_loglik(x, lengths, m.startprob_, m.transmat_, m.means_, m.covars_)
                        for m in fitted), key=lambda v: -math.inf if math.isnan(v) else v)

        return _host_runner(w, data, repeats, budget_s, fit_restarts, score, _blas_one_thread)

    return run


def run_dynamax(w, data, repeats: int, budget_s: float) -> dict:
    """dynamax's GaussianHMM.fit_em (full covariances, k-means initialisation, its default
    priors), restarts one after another. ``fit_em`` jits its loop afresh on every call, so it is
    wrapped in one ``jax.jit`` (its documented use with ``verbose=False``) and compiled once in the
    warm-up: the timed runs are the initialisation plus the compiled EM iterations."""
    import jax
    import jax.numpy as jnp
    from dynamax.hidden_markov_model import GaussianHMM

    x, lengths = data
    emissions = jnp.asarray(x)
    hmm = GaussianHMM(w.k, w.d)
    _, props = hmm.initialize(jax.random.key(0), method="kmeans", emissions=emissions)
    fit = jax.jit(lambda params: hmm.fit_em(params, props, emissions, num_iters=w.max_iter, verbose=False))

    def fit_one(r):
        params, _ = hmm.initialize(jax.random.key(r), method="kmeans", emissions=emissions)
        return jax.block_until_ready(fit(params))

    start = time.perf_counter()
    fit_one(0)  # warm-up: compiles the whole fit
    compile_s = time.perf_counter() - start
    m = w.n_init if w.n_init == 1 else _subset_size(compile_s, w.n_init, budget_s)
    walls, cpus, fitted = timed_runs(lambda: [fit_one(r) for r in range(m)], repeats)

    def score(params):
        return hmm_mean_loglik(x, lengths, params.initial.probs, params.transitions.transition_matrix,
                               params.emissions.means, params.emissions.covs)

    loglik = max((score(p) for p, _ in fitted), key=lambda v: -math.inf if math.isnan(v) else v)
    return _record(w, walls, cpus, compile_s=compile_s, n_iter=float(w.max_iter), units_run=m,
                   loglik=loglik, first_run_s=compile_s,
                   notes="fit_em under one jax.jit; compile_s is the first fit (compile + run)")


RUNNERS = {"emjax": run_emjax, "sklearn": run_sklearn, "gmmx": run_gmmx,
           "pomegranate": run_pomegranate, "hmmlearn": _hmmlearn_runner("log"),
           "hmmlearn_scaling": _hmmlearn_runner("scaling"), "dynamax": run_dynamax}
PACKAGES = {"emjax": "emjax", "sklearn": "scikit-learn", "gmmx": "gmmx",
            "pomegranate": "pomegranate", "hmmlearn": "hmmlearn", "hmmlearn_scaling": "hmmlearn",
            "dynamax": "dynamax"}
