"""Host-side helpers shared by the runners: a common float64 scorer, timing, flop counts."""
from __future__ import annotations

import math
import os
import resource
import statistics
import time

import numpy as np

SCORE_BLOCK = 1 << 16


def mean_loglik(x, weights, means, covariances, covariance_type: str) -> float:
    """Mean per-sample log-likelihood of ``x`` under a Gaussian mixture, in float64 NumPy.

    Every library's final parameters are scored by this one function, so the "best log-likelihood"
    column compares parameters, not each library's own (float32, pre- or post-M-step) bookkeeping.
    """
    x = np.asarray(x)
    w = np.asarray(weights, np.float64).reshape(-1)
    m = np.asarray(means, np.float64)
    c = np.asarray(covariances, np.float64)
    k, d = m.shape
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(m)) and np.all(np.isfinite(c))):
        return float("nan")
    with np.errstate(all="ignore"):
        if covariance_type == "full":
            try:
                chol = np.linalg.cholesky(c)
            except np.linalg.LinAlgError:
                return float("nan")
            prec_chol = np.linalg.inv(chol)  # (k, d, d) lower: prec_chol @ (x - m) is whitened
            log_det = -np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
        elif covariance_type == "diag":
            if np.any(c <= 0):
                return float("nan")
            prec_sd = 1.0 / np.sqrt(c)
            log_det = np.sum(np.log(prec_sd), axis=1)
        else:
            raise ValueError(f"covariance_type {covariance_type!r} is not scored.")
        const = np.log(w) + log_det - 0.5 * d * math.log(2 * math.pi)
        total = 0.0
        for start in range(0, x.shape[0], SCORE_BLOCK):
            xb = np.asarray(x[start:start + SCORE_BLOCK], np.float64)
            lp = np.empty((xb.shape[0], k))
            for j in range(k):
                diff = xb - m[j]
                y = diff @ prec_chol[j].T if covariance_type == "full" else diff * prec_sd[j]
                lp[:, j] = const[j] - 0.5 * np.einsum("nd,nd->n", y, y)
            top = lp.max(axis=1)
            total += float(np.sum(top + np.log(np.sum(np.exp(lp - top[:, None]), axis=1))))
    return total / x.shape[0]


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed_runs(fn, repeats: int):
    """Calls ``fn()`` ``repeats`` times; returns (wall seconds list, CPU seconds list, last value)."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        c0, t0 = cpu_seconds(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds() - c0)
    return walls, cpus, out


def median(values):
    return statistics.median(values) if values else float("nan")


def load_average() -> float:
    return os.getloadavg()[0]


def gmm_flops_per_iteration(n: int, k: int, d: int, covariance_type: str) -> float:
    """Useful floating-point operations of one EM iteration of a Gaussian mixture.

    full: ``4 N K D^2 + 6 N K D + 10 N K``: whitening ``(x - m_k) U_k`` (2NKD^2), the second
    moments ``sum_n r_nk (x-m)(x-m)^T`` (2NKD^2), differences, squares, sums and the weighted
    means (6NKD), and about 10 operations per (row, component) for the log-sum-exp and
    responsibilities. diag: ``8 N K D + 10 N K`` (two products for the Mahalanobis term, two for
    the statistics). M-step work (O(K D^3)) is negligible and not counted.
    """
    if covariance_type == "full":
        return 4.0 * n * k * d * d + 6.0 * n * k * d + 10.0 * n * k
    return 8.0 * n * k * d + 10.0 * n * k


def hmm_mean_loglik(x, lengths, initial, transitions, means, covariances) -> float:
    """Mean per-step log-likelihood of padded sequences ``x`` ``(s, t, d)`` under a Gaussian HMM
    with full covariances, in float64 NumPy (scaled forward recursion, all sequences at once):
    the common scorer of every library's final parameters on W4."""
    x = np.asarray(x, np.float64)
    lengths = np.asarray(lengths)
    params = [np.asarray(p, np.float64) for p in (initial, transitions, means, covariances)]
    if not all(np.all(np.isfinite(p)) for p in params):
        return float("nan")
    initial, trans, means, covs = params
    s, t, d = x.shape
    try:
        chol = np.linalg.cholesky(covs)
    except np.linalg.LinAlgError:
        return float("nan")
    log_det = np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
    log_emit = np.empty((s, t, len(means)))
    for j in range(len(means)):
        y = np.linalg.solve(chol[j], (x - means[j]).reshape(-1, d).T).T.reshape(s, t, d)
        log_emit[:, :, j] = -0.5 * (d * math.log(2 * math.pi) + np.sum(y * y, axis=2)) - log_det[j]
    with np.errstate(divide="ignore"):
        top = log_emit.max(axis=2, keepdims=True)
        probs = np.exp(log_emit - top)
        total = np.zeros(s)
        alpha = initial * probs[:, 0]
        for step in range(t):
            if step > 0:
                alpha = np.where((step < lengths)[:, None], alpha @ trans * probs[:, step], alpha)
            norm = alpha.sum(axis=1)
            live = step < lengths
            total += np.where(live, np.log(norm) + top[:, step, 0], 0)
            alpha = alpha / norm[:, None]
    return float(total.sum() / lengths.sum())


def hmm_flops_per_iteration(n_steps_total: int, k: int, d: int) -> float:
    """Useful floating-point operations of one Baum-Welch iteration, full covariances: the
    mixture's emission work on every step plus about 12 K^2 per step for the forward and
    backward passes and the pairwise marginals."""
    return gmm_flops_per_iteration(n_steps_total, k, d, "full") + 12.0 * n_steps_total * k * k
