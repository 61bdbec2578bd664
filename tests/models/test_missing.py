"""GaussianMixture(missing="marginalize"): the exact EM for data missing at random.

References: a NumPy implementation of Ghahramani & Jordan's (1994) algorithm written here (row by
row, with explicit sub-matrix solves), the plain model on data without NaN, and the generating
parameters of simulated data.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

import emjax
from helpers import full_covariances
from emjax.models.gaussian_mixture import GaussianMixture

COV_TYPES = ("full", "tied", "diag", "spherical")
KEY = jax.random.key(0)


# ------------------------------------------------------------------ NumPy reference
def row_conditionals(x, mean, cov):
    """log N(x_o | mean_o, cov_oo), the completed row and the conditional covariance (d, d)."""
    o = ~np.isnan(x)
    m = ~o
    resid = x[o] - mean[o]
    s_oo = cov[np.ix_(o, o)]
    _, log_det = np.linalg.slogdet(s_oo)
    log_dens = -0.5 * (o.sum() * np.log(2 * np.pi) + log_det + resid @ np.linalg.solve(s_oo, resid))
    x_hat = x.copy()
    x_hat[m] = mean[m] + cov[np.ix_(m, o)] @ np.linalg.solve(s_oo, resid)
    cond = np.zeros_like(cov)
    cond[np.ix_(m, m)] = cov[np.ix_(m, m)] - cov[np.ix_(m, o)] @ np.linalg.solve(s_oo, cov[np.ix_(o, m)])
    return log_dens, x_hat, cond


def reference_e_step(x, w, params, cov_type):
    """Row-weighted mean log-likelihood and, per component, N_k, completed rows and C terms."""
    weights, means, cov = (np.asarray(a) for a in params)
    k, d = means.shape
    covs = full_covariances(cov, cov_type, k, d)
    total, rows = 0.0, []
    for xi, wi in zip(x, w):
        if np.isnan(xi).all():
            continue  # nothing observed: contributes nothing
        parts = [row_conditionals(xi, means[j], covs[j]) for j in range(k)]
        logp = np.log(weights) + np.array([p[0] for p in parts])
        total += wi * logsumexp(logp)
        rows.append((wi * np.exp(logp - logsumexp(logp)), parts))
    return total / w.sum(), rows


def reference_em(x, w, params, cov_type, n_iter, reg_covar):
    """``n_iter`` EM steps with scikit-learn's reg_covar; returns the params and the mean
    log-likelihood after each step."""
    history = []
    eps = 10 * np.finfo(np.float64).eps
    for _ in range(n_iter):
        _, rows = reference_e_step(x, w, params, cov_type)
        k, d = np.shape(params[1])
        counts = sum(r for r, _ in rows) + eps
        means = sum(r[:, None] * np.array([p[1] for p in parts]) for r, parts in rows) / counts[:, None]
        scatter = np.zeros((k, d, d))
        for r, parts in rows:
            for j, (_, x_hat, cond) in enumerate(parts):
                diff = x_hat - means[j]
                scatter[j] += r[j] * (np.outer(diff, diff) + cond)
        cov = {"full": scatter / counts[:, None, None] + reg_covar * np.eye(d),
               "tied": scatter.sum(0) / counts.sum() + reg_covar * np.eye(d),
               "diag": np.diagonal(scatter, axis1=1, axis2=2) / counts[:, None] + reg_covar,
               "spherical": np.diagonal(scatter, axis1=1, axis2=2).mean(1) / counts + reg_covar,
               }[cov_type]
        params = (counts / counts.sum(), means, cov)
        history.append(reference_e_step(x, w, params, cov_type)[0])
    return params, np.array(history)


def start(x, cov_type, k=2, seed=1):
    """Valid starting parameters in scikit-learn's shapes."""
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    means = np.nanmean(x, axis=0) + rng.normal(size=(k, d))
    a = rng.normal(size=(k, d, d)) * 0.3
    full = np.einsum("kde,kfe->kdf", a, a) + np.eye(d)
    cov = {"full": full, "tied": full[0], "diag": rng.uniform(0.5, 2, size=(k, d)),
           "spherical": rng.uniform(0.5, 2, size=k)}[cov_type]
    return emjax.GMMParams(*(jnp.asarray(v) for v in (rng.dirichlet(np.full(k, 5.0)), means, cov)))


def data_with_holes(n=40, d=3, seed=0, fraction=0.3):
    """Correlated data; NaN in ``fraction`` of the entries of the first half of the rows (so
    chunks of half the rows take both paths), one row entirely missing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + np.arange(d)
    x[rng.normal(size=n) > 0] += 3.0
    holes = rng.random((n, d)) < fraction
    holes[n // 2:] = False
    x[holes] = np.nan
    x[3] = np.nan
    return x


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_em_matches_numpy_reference(x64, cov_type):
    x = data_with_holes()
    w = np.random.default_rng(2).integers(1, 4, size=len(x)).astype(float)
    init = start(x, cov_type)
    model = GaussianMixture(2, cov_type, pseudo_count=0, reg_covar=1e-3,
                            missing="marginalize")
    res = emjax.em(model, init, x, w, max_iter=6, tol=0.0, chunk_size=20, throw=False)
    params, history = reference_em(x, w, init, cov_type, 6, 1e-3)
    for got, want in zip(res.params, params):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.history, history, rtol=1e-10)
    row_ll = [logsumexp(np.log(params[0]) + [row_conditionals(xi, m, c)[0] for m, c in zip(
        params[1], full_covariances(params[2], cov_type, 2, 3))]) for xi in x[:10] if ~np.isnan(xi).all()]
    keep = ~np.isnan(x[:10]).all(1)
    np.testing.assert_allclose(model.log_prob(res.params, x[:10])[keep], row_ll, rtol=1e-10)


@pytest.mark.parametrize("cov_type", ["full", "diag"])  # the two code paths
def test_impute_is_the_conditional_mean(x64, cov_type):
    x = data_with_holes(n=12)
    params = start(x, cov_type)
    covs = full_covariances(params.covariances, cov_type, 2, 3)
    want = []
    for xi in x:
        parts = [row_conditionals(xi, m, c) for m, c in zip(np.asarray(params.means), covs)]
        post = np.log(params.weights) + np.array([p[0] for p in parts])
        post = np.exp(post - logsumexp(post))
        want.append(sum(p * part[1] for p, part in zip(post, parts)))
    got = jax.jit(GaussianMixture(2, cov_type).impute)(params, x)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-10)
    np.testing.assert_allclose(got[3], params.weights @ params.means, rtol=1e-12)  # nothing seen
    np.testing.assert_array_equal(got[~np.isnan(x)], x[~np.isnan(x)])


@pytest.mark.parametrize("cov_type", ["full"])  # the dispatch is the same for every type
def test_without_nan_equals_the_plain_model(x64, data, cov_type):
    """Chunks without NaN take the plain path inside a ``lax.cond``; XLA may fuse the branch
    differently, so equality is to the last bits, with identical iteration counts and statuses."""
    x = data[:80].astype(np.float64)
    init = start(x, cov_type, k=3)
    plain = emjax.em(GaussianMixture(3, cov_type), init, x, max_iter=30, throw=False)
    marg = emjax.em(GaussianMixture(3, cov_type, missing="marginalize"), init, x, max_iter=30,
                    throw=False)
    assert (int(plain.n_iter), int(plain.status)) == (int(marg.n_iter), int(marg.status))
    for a, b in zip(jax.tree_util.tree_leaves(plain), jax.tree_util.tree_leaves(marg)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def matched_error(params, truth):
    """Mean-squared error of means and covariances under the best matching of components."""
    best = np.inf
    for perm in itertools.permutations(range(len(truth[0]))):
        p = list(perm)
        err = (np.sum((np.asarray(params.means)[p] - truth[1]) ** 2)
               + np.sum((np.asarray(params.covariances)[p] - truth[2]) ** 2))
        best = min(best, err)
    return best


@pytest.mark.slow
def test_missing_at_random_beats_complete_rows(x64):
    rng = np.random.default_rng(4)
    d, n = 4, 400
    means = np.array([[0.0, 0, 0, 0], [3, 3, -2, 1]])
    a = rng.normal(size=(2, d, d)) * 0.5
    covs = np.einsum("kde,kfe->kdf", a, a) + 0.5 * np.eye(d)
    labels = rng.integers(2, size=n)
    x = means[labels] + np.einsum("nde,ne->nd", np.linalg.cholesky(covs)[labels], rng.normal(size=(n, d)))
    x[rng.random((n, d)) < 0.3] = np.nan
    complete = x[~np.isnan(x).any(axis=1)]
    truth = (np.full(2, 0.5), means, covs)
    init = emjax.GMMParams(jnp.full(2, 0.5), jnp.asarray(means + rng.normal(size=(2, d))),
                           jnp.asarray(np.stack([np.eye(d)] * 2)))  # one start for both
    marg = emjax.em(GaussianMixture(2, "full", missing="marginalize"), init, x, max_iter=200,
                    tol=1e-6)
    rows = emjax.em(GaussianMixture(2, "full"), init, complete, max_iter=200, tol=1e-6)
    assert int(marg.status) == emjax.Status.CONVERGED  # MAP-EM stays monotone with holes
    assert matched_error(marg.params, truth) < matched_error(rows.params, truth)


def test_bad_input_names_the_option():
    x = np.ones((5, 2))
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN value.*index \(2, 1\).*missing='marginalize'"):
        emjax.fit(GaussianMixture(1), x, KEY)
    x[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"1 inf value.*index \(0, 0\)"):
        emjax.fit(GaussianMixture(1, missing="marginalize"), x, KEY)
    x[0, 0], x[:, 1] = 1.0, np.nan
    with pytest.raises(ValueError, match="column 1 has no observed value"):
        emjax.fit(GaussianMixture(1, missing="marginalize"), x, KEY)
    with pytest.raises(ValueError, match="missing must be one of"):
        GaussianMixture(1, missing="drop")
    y = np.full((4, 2), np.nan)
    y[:2] = 1.0
    with pytest.raises(ValueError, match="2 row.*observed value.*n_components=3"):
        emjax.fit(GaussianMixture(3, missing="marginalize"), y, KEY)
