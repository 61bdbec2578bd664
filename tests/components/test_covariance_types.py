"""The covariance-type table (emjax.components.covariance_types) against NumPy/SciPy at float64,
and the error every public entry gives for an unknown covariance_type."""
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from helpers import full_covariances

import emjax
import emjax.sklearn as sk
from emjax.components import gaussian as g
from emjax.components.covariance_types import COVARIANCE_TYPES, lookup

K, D = 3, 3


def _problem(covariance_type, seed=0):
    """Rows, means and covariances of ``covariance_type``'s shape, with the (k, d, d) matrices."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(K, D, D))
    matrices = a @ np.swapaxes(a, 1, 2) + np.eye(D)
    cov = {"full": matrices, "tied": matrices[0], "diag": rng.uniform(0.5, 2.0, (K, D)),
           "spherical": rng.uniform(0.5, 2.0, K)}[covariance_type]
    return rng.normal(size=(7, D)), rng.normal(size=(K, D)), cov, full_covariances(cov, covariance_type, K, D)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_density_matches_scipy(covariance_type, x64):
    x, means, cov, full = _problem(covariance_type)
    kind = lookup(covariance_type)
    got = np.asarray(g.log_density(jnp.asarray(x), jnp.asarray(means), g.precision_cholesky(jnp.asarray(cov), kind), kind))
    want = np.stack([scipy.stats.multivariate_normal(m, c).logpdf(x) for m, c in zip(means, full)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_operations_match_numpy(covariance_type, x64):
    _, means, cov, full = _problem(covariance_type, seed=1)
    kind = lookup(covariance_type)
    precisions = np.linalg.inv(full)
    u = g.precision_cholesky(jnp.asarray(cov), kind)
    per_k = lambda a: np.broadcast_to(np.asarray(a), (K,))  # tied gives one value for all
    assert kind.shape(K, D) == np.shape(cov)
    np.testing.assert_allclose(per_k(kind.log_det(u, D)), -0.5 * np.linalg.slogdet(full)[1], rtol=1e-12)
    np.testing.assert_allclose(per_k(kind.trace_of_square(u, D)), np.trace(precisions, axis1=1, axis2=2),
                               rtol=1e-12)
    y = np.asarray(kind.whiten(jnp.asarray(means), u))
    np.testing.assert_allclose(np.sum(y * y, axis=1), np.einsum("kd,kde,ke->k", means, precisions, means),
                               rtol=1e-12)
    prior, prior_matrix = _one_covariance(covariance_type)
    np.testing.assert_allclose(per_k(kind.weighted_trace(jnp.asarray(prior), u, D)),
                               np.trace(prior_matrix @ precisions, axis1=1, axis2=2), rtol=1e-12)
    scale = np.array([2.0, 0.5, 3.0]) if not kind.common_scale else np.full(D, 2.0)
    scaled = full_covariances(np.asarray(kind.scale(jnp.asarray(cov), jnp.asarray(scale))), covariance_type, K, D)
    np.testing.assert_allclose(scaled, full / scale[:, None] / scale[None, :], rtol=1e-12)
    if not kind.matrix:
        np.testing.assert_array_equal(np.broadcast_to(kind.per_feature(cov), (K, D)),
                                      np.diagonal(full, axis1=1, axis2=2))
        np.testing.assert_allclose(kind.pool_variances(np.diagonal(full, axis1=1, axis2=2)), cov, rtol=1e-15)
    n_free = {"full": K * D * (D + 1) // 2, "tied": D * (D + 1) // 2, "diag": K * D, "spherical": K}
    assert kind.n_parameters(K, D) == n_free[covariance_type]


def _one_covariance(covariance_type):
    """A covariance of the type's per-component form (a prior's): ``(its value, (d, d) matrix)``."""
    a = np.random.default_rng(2).normal(size=(D, D))
    matrix = a @ a.T + np.eye(D)
    if lookup(covariance_type).matrix:
        return matrix, matrix
    variances = np.diag(matrix) if covariance_type == "diag" else np.float64(1.7)
    return variances, np.diag(np.broadcast_to(variances, (D,)))


def _scatter(covariance_type):
    """Scatter matrices ``(k, d, d)`` and the same in the statistics' shape of the type (full
    as they are, tied summed over components, diag and spherical their diagonals)."""
    a = np.random.default_rng(3).normal(size=(K, D, D))
    scatter = a @ np.swapaxes(a, 1, 2)
    diagonals = np.diagonal(scatter, axis1=1, axis2=2)
    return scatter, {"full": scatter, "tied": scatter.sum(0), "diag": diagonals,
                     "spherical": diagonals}[covariance_type]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_divide_gives_the_types_covariance(covariance_type, x64):
    """Scatter over counts: S_k / N_k restricted to the type (tied: sum_k S_k / N; spherical: the
    mean variance)."""
    kind, counts = lookup(covariance_type), np.array([2.0, 4.0, 5.0])
    scatter, stats_shape = _scatter(covariance_type)
    got = np.asarray(kind.divide(jnp.asarray(stats_shape), jnp.asarray(counts)))
    per_component = scatter / counts[:, None, None]
    want = {"full": per_component, "tied": scatter.sum(0) / counts.sum(),
            "diag": np.diagonal(per_component, axis1=1, axis2=2),
            "spherical": np.trace(per_component, axis1=1, axis2=2) / D}[covariance_type]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_wishart_scale_is_the_restricted_scale(covariance_type, x64):
    """nu_k C_k = C_0 + W_k + beta0 (m_k - m_0)(m_k - m_0)^T restricted to the type: itself (full),
    the mean over components (tied), its diagonal (diag), its mean variance (spherical)."""
    kind, beta0 = lookup(covariance_type), 0.7
    prior, prior_matrix = _one_covariance(covariance_type)
    diff = np.random.default_rng(4).normal(size=(K, D))
    scatter, stats_shape = _scatter(covariance_type)
    whole = prior_matrix + scatter + beta0 * diff[:, :, None] * diff[:, None, :]
    want = {"full": whole, "tied": whole.mean(0), "diag": np.diagonal(whole, axis1=1, axis2=2),
            "spherical": np.trace(whole, axis1=1, axis2=2) / D}[covariance_type]
    got = kind.wishart_scale(jnp.asarray(prior), jnp.asarray(stats_shape), jnp.asarray(diff), beta0)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


X = np.random.default_rng(0).normal(size=(30, 2))
ENTRIES = {
    "GaussianMixture": lambda t: emjax.GaussianMixture(2, covariance_type=t),
    "BayesianGaussianMixture": lambda t: emjax.BayesianGaussianMixture(2, covariance_type=t),
    "GaussianHMM": lambda t: emjax.GaussianHMM(2, covariance_type=t),
    "HMM(emission='gaussian')": lambda t: emjax.HMM(2, emission="gaussian", covariance_type=t),
    # scikit-learn's estimators take any value in __init__ and check it in fit
    "sklearn.GaussianMixture": lambda t: sk.GaussianMixture(2, covariance_type=t).fit(X),
    "sklearn.BayesianGaussianMixture": lambda t: sk.BayesianGaussianMixture(n_components=2, covariance_type=t).fit(X),
    "sklearn.GaussianHMM": lambda t: sk.GaussianHMM(2, covariance_type=t).fit(X),
}


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("bad", ["Full", "bogus", None])
def test_unknown_covariance_type_is_named_with_the_allowed_values(entry, bad):
    with pytest.raises(ValueError, match="covariance_type") as err:
        ENTRIES[entry](bad)
    message = str(err.value)
    assert repr(bad) in message and all(repr(t) in message for t in COVARIANCE_TYPES), message


def test_lookup_names_the_argument():
    assert lookup("tied") is lookup(lookup("tied"))
    with pytest.raises(ValueError, match=r"covariance_type must be one of \('full', 'tied', 'diag', 'spherical'\); got \['full'\]"):
        lookup(["full"])
