"""float32 accuracy of the diag/spherical log-densities and E-step statistics.

Reference: the same float32 inputs evaluated in float64 NumPy. The data are badly scaled: tight
components (standard deviations 1e-3 to 3e-3) far from the origin, where the expanded quadratic
form x^2 p - 2 x m p + m^2 p loses everything to cancellation in float32 (checked below, so the
test can tell the two formulations apart).
"""
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

import emjax
from emjax.components import gaussian as g

N, D, K = 300, 6, 3


def _tight_far_data(covariance_type, seed=0):
    """float32 rows of K tight clusters whose centres sit 3 to 8 units from the origin, and
    parameters (weights, means, covariances) close to the clusters'."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(3, 8, (K, D)) * rng.choice([-1, 1], (K, D))
    sd = rng.uniform(1e-3, 3e-3, (K, D) if covariance_type == "diag" else (K, 1))
    labels = rng.integers(K, size=N)
    x = (centres[labels] + sd[labels] * rng.normal(size=(N, D))).astype(np.float32)
    means = (centres + 0.5 * sd * rng.normal(size=(K, D))).astype(np.float32)
    var = 1.3 * sd ** 2
    cov = (var if covariance_type == "diag" else var[:, 0]).astype(np.float32)
    weights = np.array([0.5, 0.3, 0.2], np.float32)
    return x, emjax.GMMParams(jnp.asarray(weights), jnp.asarray(means), jnp.asarray(cov))


def _reference_log_density(x, means, cov):
    """float64 log N(x_n | m_k, diag(cov_k)), shape (k, n)."""
    x, means = x.astype(np.float64), means.astype(np.float64)
    var = np.broadcast_to(cov.astype(np.float64).reshape(K, -1), (K, D))
    maha = (((x[None] - means[:, None]) ** 2) / var[:, None]).sum(-1)
    return -0.5 * (D * np.log(2 * np.pi) + np.log(var).sum(1)[:, None] + maha)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_float32_log_density_of_tight_far_components_matches_float64(covariance_type):
    x, params = _tight_far_data(covariance_type)
    prec_chol = g.precision_cholesky(params.covariances, covariance_type)
    got = np.asarray(g.log_density(jnp.asarray(x), params.means, prec_chol, covariance_type))
    assert got.dtype == np.float32
    want = _reference_log_density(x, np.asarray(params.means), np.asarray(params.covariances))
    # a few ulps of the terms' magnitude (the Mahalanobis terms reach ~1e7 for other clusters)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-3)

    # the expanded form on the same float32 inputs is off by far more: the data are hard
    p = np.broadcast_to((1 / np.asarray(params.covariances)).reshape(K, -1), (K, D)).astype(np.float32)
    m = np.asarray(params.means)
    expanded = (x * x) @ p.T - 2 * x @ (m * p).T + (m * m * p).sum(1)
    exact = ((x[:, None].astype(np.float64) - m[None]) ** 2 * p[None]).sum(-1)
    assert np.max(np.abs(expanded - exact)) > 100 * 2e-3


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_float32_e_step_statistics_match_float64_numpy(covariance_type):
    x, params = _tight_far_data(covariance_type, seed=1)
    w = np.random.default_rng(2).uniform(0.5, 2.0, N).astype(np.float32)
    w[::7] = 0  # rows of weight 0 contribute nothing
    model = emjax.GaussianMixture(K, covariance_type=covariance_type)
    (counts, sums, second), loglik = model.e_step(params, jnp.asarray(x), jnp.asarray(w))

    lp = _reference_log_density(x, np.asarray(params.means), np.asarray(params.covariances))
    lp += np.log(np.asarray(params.weights, np.float64))[:, None]
    row_ll = logsumexp(lp, axis=0)
    r = np.exp(lp - row_ll) * w  # (k, n)
    x64, m64 = x.astype(np.float64), np.asarray(params.means, np.float64)
    want_second = np.einsum("kn,knd->kd", r, (x64[None] - m64[:, None]) ** 2)
    np.testing.assert_allclose(loglik, w @ row_ll, rtol=1e-5)
    np.testing.assert_allclose(counts, r.sum(1), rtol=1e-5)
    np.testing.assert_allclose(sums, r @ x64, rtol=1e-6)
    # second moments about the means of tight clusters: relative accuracy, not eps * x^2
    np.testing.assert_allclose(second, want_second, rtol=1e-4)
