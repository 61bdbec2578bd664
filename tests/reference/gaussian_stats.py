"""Gaussian E-step statistics in float64 NumPy, from the definitions, and a small problem to
compute them on."""
import numpy as np


def reference_stats(x, resp, ref, covariance_type):
    """Counts, sums and sum_n r_kn (x_n - a_k)(x_n - a_k)^T in float64 (tied: summed over k)."""
    x, resp, ref = (np.asarray(a, np.float64) for a in (x, resp, ref))
    diff = x[None] - ref[:, None]  # (k, n, d)
    second = np.einsum("kn,knc,kne->kce", resp, diff, diff)
    if covariance_type == "tied":
        second = second.sum(0)
    return resp.sum(1), resp @ x, second


def problem(d, k=3, n=40, seed=0, offset=0.0, spread=1.0):
    rng = np.random.default_rng(seed)
    x = offset + spread * rng.normal(size=(n, d))
    resp = rng.uniform(size=(k, n))
    ref = offset + spread * rng.normal(size=(k, d))
    return x, resp / resp.sum(0), ref
