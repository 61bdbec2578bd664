"""Tied covariances over one chunk and XLA CPU's YNNPACK fusions (issue "Trust", reproducer 1).

jaxlib 0.10's CPU compiler fused a transposed matrix product into the reduction that consumed it
and returned wrong sums: one ``em`` step of a tied mixture on 569 x 30 rows (one E-step chunk) was
off, while 64-row chunks were right. The references here are NumPy/SciPy at float64.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.linalg import solve_triangular
from scipy.stats import multivariate_normal
from sklearn.datasets import load_breast_cancer

import emjax
from emjax import xla_options
from emjax.driver import run_em
from emjax.raw_rows import fit_coordinates


def _precision_cholesky(c):
    chol = jnp.linalg.cholesky(c)
    return solve_triangular(chol, jnp.eye(c.shape[-1], dtype=c.dtype), lower=True).T


def _fused_pattern(c, x, m):
    """The pattern XLA miscompiled: ``sum_d ((U^T x^T)[None] - (m U)[..., None])^2``."""
    u = _precision_cholesky(c)
    return jnp.sum(jnp.square((u.T @ x.T)[None] - (m @ u)[:, :, None]), axis=1)


def test_emjax_programs_compute_the_fused_pattern_exactly():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 30))
    c, x, m = a @ a.T / 30 + np.eye(30), rng.normal(size=(569, 30)), rng.normal(size=(2, 30))
    c, x, m = (np.float32(v) for v in (c, x, m))
    u = np.linalg.inv(np.linalg.cholesky(c.astype(float))).T
    expected = np.sum((((x @ u)[None] - (m @ u)[:, None, :])) ** 2, axis=-1)
    got = np.asarray(xla_options.jit(_fused_pattern)(c, x, m))
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def _breast_cancer():
    x = load_breast_cancer().data
    return (x - x.mean(0)) / x.std(0)


def _sklearn_tied_step(x, params, reg_covar=1e-6):
    """One EM step of scikit-learn's tied GaussianMixture, written in NumPy at float64."""
    weights, means, cov = (np.asarray(p, float) for p in params)
    log_p = np.stack([multivariate_normal(mu, cov).logpdf(x) for mu in means]) + np.log(weights)[:, None]
    resp = np.exp(log_p - np.logaddexp.reduce(log_p, axis=0))
    nk = resp.sum(1) + 10 * np.finfo(float).eps
    new_means = resp @ x / nk[:, None]
    new_cov = (x.T @ x - (nk * new_means.T) @ new_means) / nk.sum() + reg_covar * np.eye(x.shape[1])
    return nk / nk.sum(), new_means, new_cov


@pytest.fixture(scope="module")
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("chunk_size", [None, 64, 569, 1000])
def test_one_tied_step_on_breast_cancer_matches_sklearn(x64, chunk_size):
    x = _breast_cancer()
    model = emjax.GaussianMixture(2, "tied", regularization="sklearn")
    start = jax.tree_util.tree_map(lambda a: a[0], emjax.init_restarts(model, x, jax.random.key(0), n_init=1))
    result = emjax.em(model, start, x, max_iter=1, tol=0.0, chunk_size=chunk_size, throw=False)
    for got, want in zip(result.params, _sklearn_tied_step(x, start)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-11)
    recomputed = np.mean(np.asarray(model.log_prob(result.params, x)))
    np.testing.assert_allclose(float(result.history[0]), recomputed, rtol=1e-12)


def test_tied_loop_inside_a_callers_jit_matches_sklearn(x64):
    """Inside a caller's ``jax.jit`` emjax's compiler options do not apply: the tied form itself
    must avoid the miscompiled fusion."""
    x = jnp.asarray(_breast_cancer())
    model = emjax.GaussianMixture(2, "tied", regularization="sklearn")
    start = jax.tree_util.tree_map(lambda a: a[0], emjax.init_restarts(model, x, jax.random.key(0), n_init=1))
    weights = jnp.ones(x.shape[0])

    @jax.jit
    def one_step(params, data, w):
        fit_model, rows, transform, _ = fit_coordinates(model, data, w, data.shape[0])
        result = run_em(fit_model, model.params_to_standard(params, transform), rows, w,
                        max_iter=1, tol=0.0, chunk_size=data.shape[0])
        return model.params_from_standard(result.params, transform)

    for got, want in zip(one_step(start, x, weights), _sklearn_tied_step(np.asarray(x), start)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-11)


def test_many_tied_restarts_never_decrease_and_the_winner_is_a_fixed_point(x64):
    """MAP-EM (the default prior) never lowers its objective, so no restart is DECREASED.
    (scikit-learn's reg_covar, added after each M-step, is not a prior: that EM may fall by ~1e-9
    near its fixed point, which the driver honestly reports.) The winner of either is a fixed
    point of scikit-learn's step."""
    x = _breast_cancer()
    model = emjax.GaussianMixture(2, "tied")
    result = emjax.fit(model, x, jax.random.key(0), n_init=16, tol=1e-12, max_iter=500, throw=False)
    names = [emjax.Status(int(s)).name for s in result.restarts.status]
    assert set(names) == {"CONVERGED"}, names
    sklearn_model = emjax.GaussianMixture(2, "tied", regularization="sklearn")
    result = emjax.fit(sklearn_model, x, jax.random.key(0), n_init=16, tol=1e-10, max_iter=500,
                       throw=False)
    for got, want in zip(result.params, _sklearn_tied_step(x, result.params)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-7)
