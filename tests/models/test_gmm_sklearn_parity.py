"""emjax's GaussianMixture in ``pseudo_count=0`` mode against scikit-learn (float64).

Same starting parameters -> same parameters and the same log-likelihood trace after every EM
iteration; sample weights as integer frequencies behave as repeated rows; the density, posterior,
prediction and information criteria of given parameters equal scikit-learn's.

Trace alignment: scikit-learn's ``lower_bound_`` after ``max_iter=t+1`` is the mean
log-likelihood of the parameters after ``t`` M-steps, which is emjax's ``history[t-1]``.
"""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_limits

import emjax
from reference.sklearn_gmm import make_data, make_init, precisions_of

COV_TYPES = ("full", "tied", "diag", "spherical")
N_ITER = 20
RTOL = 1e-8


@pytest.fixture(scope="module", autouse=True)
def _x64_and_single_threaded_blas():
    """float64 for this module's tests only (x64 is process-global: it is switched on here and
    restored afterwards, so modules collected alongside are unaffected); one BLAS thread, because
    multi-threaded OpenBLAS makes scikit-learn's 3x3 triangular solves ~1000x slower on small
    machines (speed only, not results)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    assert jnp.zeros(()).dtype == jnp.float64
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def sk_run(x, cov_type, init, max_iter, reg_covar=1e-6):
    w0, m0, cov0 = init
    sk = SkGaussianMixture(len(w0), covariance_type=cov_type, max_iter=max_iter, tol=0.0,
                           reg_covar=reg_covar, weights_init=w0, means_init=m0,
                           precisions_init=precisions_of(cov0, cov_type))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk.fit(x)
    return sk


def assert_params_match(params, sk, what):
    np.testing.assert_allclose(np.asarray(params.weights), sk.weights_, rtol=RTOL, atol=0,
                               err_msg=f"weights {what}")
    np.testing.assert_allclose(np.asarray(params.means), sk.means_, rtol=RTOL, atol=1e-12,
                               err_msg=f"means {what}")
    np.testing.assert_allclose(np.asarray(params.covariances), sk.covariances_, rtol=RTOL,
                               atol=1e-12, err_msg=f"covariances {what}")


def check_trace_parity(x, cov_type, init, weights=None, x_sklearn=None, reg_covar=1e-6):
    """emjax on (x, weights) against scikit-learn on ``x_sklearn`` (default: x) for 1..N_ITER."""
    x_sklearn = x if x_sklearn is None else x_sklearn
    k = len(init[0])
    model = emjax.GaussianMixture(k, cov_type, reg_covar=reg_covar, pseudo_count=0)
    params0 = emjax.GMMParams(*(jnp.asarray(a) for a in init))

    sks = {t: sk_run(x_sklearn, cov_type, init, t, reg_covar) for t in range(1, N_ITER + 2)}
    # Sanity of the reference itself: EM on these data is still moving at the end, so the
    # comparisons below are not between converged fixed points only.
    assert abs(sks[N_ITER + 1].lower_bound_ - sks[N_ITER].lower_bound_) > 1e-7

    # One while_loop of N_ITER iterations: whole trace and final parameters.
    r = emjax.em(model, params0, x, weights, max_iter=N_ITER, tol=0.0, throw=False)
    assert int(r.status) == emjax.Status.MAX_ITER, emjax.Status(int(r.status)).name
    assert int(r.n_iter) == N_ITER
    sk_trace = np.array([sks[t + 1].lower_bound_ for t in range(1, N_ITER + 1)])
    np.testing.assert_allclose(np.asarray(r.history), sk_trace, rtol=RTOL, atol=0)
    np.testing.assert_allclose(float(r.objective), sk_trace[-1], rtol=RTOL)
    np.testing.assert_allclose(float(r.log_likelihood), sk_trace[-1], rtol=RTOL)
    assert_params_match(r.params, sks[N_ITER], f"after {N_ITER} iterations")

    # Parameters after every number of iterations: one EM step at a time from the last result.
    params = params0
    for t in range(1, N_ITER + 1):
        step = emjax.em(model, params, x, weights, max_iter=1, tol=0.0, throw=False)
        assert int(step.status) == emjax.Status.MAX_ITER
        assert_params_match(step.params, sks[t], f"after {t} iteration(s)")
        np.testing.assert_allclose(float(step.history[0]), sks[t + 1].lower_bound_, rtol=RTOL)
        params = step.params


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_em_matches_sklearn_iteration_by_iteration(cov_type):
    x = make_data()
    check_trace_parity(x, cov_type, make_init(x, cov_type))


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_integer_weights_equal_repeated_rows(cov_type):
    x = make_data(seed=2)  # same shapes as above: the compiled EM loops are reused
    counts = np.random.default_rng(3).integers(0, 4, size=len(x))  # zeros drop rows entirely
    counts[:3] = (0, 1, 3)
    check_trace_parity(x, cov_type, make_init(x, cov_type, seed=4), weights=counts,
                       x_sklearn=np.repeat(x, counts, axis=0))


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_larger_reg_covar_matches_sklearn(cov_type):
    """reg_covar is added in the data's own units, as scikit-learn does (visible at 1e-2)."""
    x = make_data(seed=5, n=80, d=2)
    init = make_init(x, cov_type, k=2, seed=6)
    model = emjax.GaussianMixture(2, cov_type, reg_covar=1e-2, pseudo_count=0)
    r = emjax.em(model, emjax.GMMParams(*map(jnp.asarray, init)), x, max_iter=5, tol=0.0,
                 throw=False)
    sk = sk_run(x, cov_type, init, 5, reg_covar=1e-2)
    assert_params_match(r.params, sk, "with reg_covar=1e-2")
    # The regulariser is visible at this tolerance: without it the covariances differ.
    sk0 = sk_run(x, cov_type, init, 5, reg_covar=0.0)
    assert not np.allclose(np.asarray(r.params.covariances), sk0.covariances_, rtol=1e-6)


def sklearn_fitted(x, cov_type, k, seed):
    sk = SkGaussianMixture(k, covariance_type=cov_type, random_state=seed, max_iter=50, tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk.fit(x)
    return sk


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_density_posterior_predict_criteria_match_sklearn(cov_type):
    x = make_data(seed=7, n=200)
    x_new = make_data(seed=8, n=60) + np.random.default_rng(9).normal(scale=0.5, size=(60, 3))
    k = 3
    sk = sklearn_fitted(x, cov_type, k, seed=0)
    model = emjax.GaussianMixture(k, cov_type)
    params = emjax.GMMParams(jnp.asarray(sk.weights_), jnp.asarray(sk.means_),
                             jnp.asarray(sk.covariances_))
    for data in (x, x_new):
        np.testing.assert_allclose(np.asarray(model.log_prob(params, data)),
                                   sk.score_samples(data), rtol=1e-10, atol=1e-12)
        resp = sk.predict_proba(data)
        # The posterior is not trivially one-hot on these overlapping clusters.
        assert ((resp > 0.05) & (resp < 0.95)).any()
        np.testing.assert_allclose(np.asarray(model.posterior(params, data)), resp,
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(model.predict(params, data)), sk.predict(data))
        np.testing.assert_allclose(float(emjax.bic(model, params, data)), sk.bic(data), rtol=1e-10)
        np.testing.assert_allclose(float(emjax.aic(model, params, data)), sk.aic(data), rtol=1e-10)
    assert model.n_free_parameters(params) == sk._n_parameters()


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("k,d", [(1, 1), (2, 4), (5, 2)])
def test_n_free_parameters_matches_sklearn(cov_type, k, d):
    rng = np.random.default_rng(10 * k + d)
    x = rng.normal(size=(40, d))
    sk = sklearn_fitted(x, cov_type, k, seed=1)
    model = emjax.GaussianMixture(k, cov_type)
    params = emjax.GMMParams(jnp.asarray(sk.weights_), jnp.asarray(sk.means_),
                             jnp.asarray(sk.covariances_))
    assert model.n_free_parameters(params) == sk._n_parameters()
