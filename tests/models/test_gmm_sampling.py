"""GaussianMixture.sample against the parameters it draws from, and recovery of known parameters
by ``emjax.fit`` (compared with scikit-learn on the same data). float32, fixed seeds; tolerances
are multiples of the estimates' standard errors. Works whether or not x64 is switched on."""
import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_limits

import emjax

COV_TYPES = ("full", "tied", "diag", "spherical")
Z = 5.0  # standard errors allowed (fixed seeds: deterministic, and loose enough to be honest)

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[0.0, 0.0, 0.0], [10.0, -5.0, 3.0], [-8.0, 6.0, 12.0]]) + np.array([100.0, -20.0, 5.0])
_A = np.array([[[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-0.3, 0.4, 0.5]],
               [[1.5, 0.0, 0.0], [-0.9, 1.0, 0.0], [0.2, 0.1, 0.7]],
               [[0.7, 0.0, 0.0], [0.3, 1.2, 0.0], [0.5, -0.6, 1.1]]])
FULL = np.einsum("kde,kfe->kdf", _A, _A)
COVARIANCES = {"full": FULL, "tied": FULL[1],
               "diag": np.array([[1.0, 0.5, 2.0], [0.3, 1.5, 0.8], [2.5, 0.4, 1.0]]),
               "spherical": np.array([1.0, 2.5, 0.5])}


@pytest.fixture(scope="module", autouse=True)
def _single_threaded_blas():
    """Multi-threaded OpenBLAS makes scikit-learn's tiny solves very slow on small machines."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def component_covariances(cov_type, cov=None):
    cov = COVARIANCES[cov_type] if cov is None else cov
    k, d = MEANS.shape
    return {"full": lambda: cov, "tied": lambda: np.broadcast_to(cov, (k, d, d)),
            "diag": lambda: np.stack([np.diag(c) for c in cov]),
            "spherical": lambda: cov[:, None, None] * np.eye(d)}[cov_type]()


def true_params(cov_type):
    return emjax.GMMParams(jnp.asarray(WEIGHTS, jnp.float32), jnp.asarray(MEANS, jnp.float32),
                           jnp.asarray(COVARIANCES[cov_type], jnp.float32))


@pytest.mark.slow
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_sample_moments_and_labels_match_params(cov_type):
    n = 200_000
    model = emjax.GaussianMixture(3, cov_type)
    x, labels = model.sample(jax.random.key(0), true_params(cov_type), n)
    assert x.shape == (n, 3) and labels.shape == (n,)
    assert x.dtype == jnp.float32
    x, labels = np.asarray(x, np.float64), np.asarray(labels)
    assert set(np.unique(labels)) <= {0, 1, 2}
    covs = component_covariances(cov_type)

    # Label frequencies: binomial standard errors.
    freq = np.bincount(labels, minlength=3) / n
    se = np.sqrt(WEIGHTS * (1 - WEIGHTS) / n)
    np.testing.assert_array_less(np.abs(freq - WEIGHTS), Z * se)

    for j in range(3):
        xj = x[labels == j]
        nj = len(xj)
        s = covs[j]
        # Component mean: standard error sqrt(Sigma_ii / n_j).
        np.testing.assert_array_less(np.abs(xj.mean(axis=0) - MEANS[j]),
                                     Z * np.sqrt(np.diag(s) / nj))
        # Component covariance: for Gaussian data Var(x_a x_b) = S_aa S_bb + S_ab^2.
        sample_cov = np.cov(xj, rowvar=False)
        se_cov = np.sqrt((np.outer(np.diag(s), np.diag(s)) + s * s) / nj)
        np.testing.assert_array_less(np.abs(sample_cov - s), Z * se_cov + 1e-6)
        # Shape, not only two moments: squared Mahalanobis distances are chi-square(d).
        diff = xj - MEANS[j]
        maha = np.einsum("nd,de,ne->n", diff, np.linalg.inv(s), diff)
        assert stats.kstest(maha, stats.chi2(df=3).cdf).pvalue > 1e-4

    # The mixture as a whole: mean and covariance of the marginal distribution.
    mix_mean = WEIGHTS @ MEANS
    second = np.einsum("k,kde->de", WEIGHTS, covs + np.einsum("kd,ke->kde", MEANS, MEANS))
    mix_cov = second - np.outer(mix_mean, mix_mean)
    np.testing.assert_array_less(np.abs(x.mean(axis=0) - mix_mean),
                                 Z * np.sqrt(np.diag(mix_cov) / n))
    centred = x - mix_mean
    products = np.einsum("nd,ne->nde", centred, centred)
    np.testing.assert_array_less(np.abs(products.mean(axis=0) - mix_cov),
                                 Z * products.std(axis=0) / np.sqrt(n))


def test_sample_is_reproducible_and_key_dependent():
    model = emjax.GaussianMixture(3, "full")
    params = true_params("full")
    a, la = model.sample(jax.random.key(3), params, 1000)
    b, lb = model.sample(jax.random.key(3), params, 1000)
    c, lc = model.sample(jax.random.key(4), params, 1000)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(la), np.asarray(lb))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def match_components(est_means, true_means):
    """The permutation p minimising sum_j |est_means[p[j]] - true_means[j]|^2 (brute force)."""
    k = len(true_means)
    return min(itertools.permutations(range(k)),
               key=lambda p: sum(np.sum((est_means[p[j]] - true_means[j]) ** 2) for j in range(k)))


def reorder(params, perm, cov_type):
    w, m, c = (np.asarray(a, np.float64) for a in params)
    perm = list(perm)
    return w[perm], m[perm], (c if cov_type == "tied" else c[perm])


@pytest.mark.slow
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_fit_recovers_known_params_like_sklearn(cov_type):
    n = 20_000
    model = emjax.GaussianMixture(3, cov_type)
    x, _ = model.sample(jax.random.key(1), true_params(cov_type), n)
    x = np.asarray(x, np.float32)

    f = emjax.fit(model, x, jax.random.key(2), n_init=4)
    assert emjax.Status(int(f.status)).healthy
    w, m, c = reorder(f.params, match_components(np.asarray(f.params.means), MEANS), cov_type)

    sk = SkGaussianMixture(3, covariance_type=cov_type, n_init=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk.fit(x.astype(np.float64))
    sk_w, sk_m, sk_c = reorder((sk.weights_, sk.means_, sk.covariances_),
                               match_components(sk.means_, MEANS), cov_type)

    # Standard errors of the complete-data estimates (the clusters barely overlap).
    covs = component_covariances(cov_type)
    counts = n * WEIGHTS
    se_w = np.sqrt(WEIGHTS * (1 - WEIGHTS) / n)
    se_m = np.sqrt(np.diagonal(covs, axis1=1, axis2=2) / counts[:, None])
    se_full = np.sqrt((np.einsum("ka,kb->kab", np.diagonal(covs, axis1=1, axis2=2),
                                 np.diagonal(covs, axis1=1, axis2=2)) + covs ** 2)
                      / counts[:, None, None])
    se_c = {"full": se_full,
            "tied": se_full[0] * np.sqrt(counts[0] / n),  # pooled over all n rows
            "diag": np.diagonal(se_full, axis1=1, axis2=2),
            "spherical": np.sqrt(np.mean(np.diagonal(se_full, axis1=1, axis2=2) ** 2, axis=1) / 3)
            }[cov_type]
    true_c = COVARIANCES[cov_type]

    # Recovery: within Z standard errors of the truth.
    np.testing.assert_array_less(np.abs(w - WEIGHTS), Z * se_w)
    np.testing.assert_array_less(np.abs(m - MEANS), Z * se_m)
    np.testing.assert_array_less(np.abs(c - true_c), Z * se_c)
    # ... and as good as scikit-learn: both are the maximum-likelihood fit of the same data, so
    # they agree far more closely than either agrees with the truth.
    np.testing.assert_array_less(np.abs(w - sk_w), 0.2 * se_w)
    np.testing.assert_array_less(np.abs(m - sk_m), 0.2 * se_m)
    np.testing.assert_array_less(np.abs(c - sk_c), 0.2 * se_c)
    np.testing.assert_allclose(float(f.log_likelihood), sk.score(x.astype(np.float64)),
                               rtol=0, atol=2e-4)
