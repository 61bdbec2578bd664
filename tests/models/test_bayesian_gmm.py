r"""emjax's BayesianGaussianMixture against scikit-learn's, and its own guarantees.

Parity (float64): scikit-learn is started from given responsibilities through its private
steps (``_check_parameters``, ``_initialize(X, resp)``, then ``_e_step`` / ``_m_step`` /
``_compute_lower_bound`` per iteration, ``reg_covar=0``); emjax's ``fit`` starts from
scikit-learn's state after ``_initialize`` (passed as ``init_params``). emjax's own
``init_from_responsibilities`` is checked against ``_initialize`` separately (explicit priors).

Relation of the bounds. emjax's ``history[t]`` is the exact ELBO :math:`\mathcal L(r^*(\theta_{t+1}),
\theta_{t+1})` of the parameters after ``t + 1`` M-steps with their optimal responsibilities.
scikit-learn's ``lower_bound`` of iteration ``t`` is evaluated at the new parameters
:math:`\theta_{t+1} = M(r_t)` with the *previous* responsibilities :math:`r_t = r^*(\theta_t)`, in a
form that is only valid at :math:`\theta = M(r)` and drops constants:

.. math::
    \mathcal L(r_t, \theta_{t+1}) = \text{lower\_bound}_t + C,\quad
    C = -\tfrac{Nd}2\log 2\pi + K\big[\tfrac d2\log\beta_0 + \log B(W_0, \nu_0)
        + \tfrac{d(d-1)}4\log\pi\big] + \begin{cases} K\log\gamma_0 & \text{DP}\\
        \log\Gamma(K\alpha_0) - K\log\Gamma(\alpha_0) & \text{Dirichlet}\end{cases}

with :math:`\log B(W_0,\nu_0) = \tfrac{\nu_0}2\log|C_0| - \tfrac{\nu_0 d}2\log 2 - \log\Gamma_d(\tfrac{\nu_0}2)`
(scikit-learn's Wishart normaliser omits the :math:`\tfrac{d(d-1)}4\log\pi` of :math:`\log\Gamma_d`).
The E-step then adds :math:`\sum_n \mathrm{KL}(r_{t,n} \| r^*_n(\theta_{t+1}))`, computed here from
scikit-learn's own ``_estimate_weighted_log_prob``. So the reference is built from scikit-learn's
numbers and the constant alone.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import gammaln, logsumexp, multigammaln
from scipy.stats import multivariate_t
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky
from threadpoolctl import threadpool_limits

import emjax
from emjax import BayesianGaussianMixture
from helpers import blobs

COV_TYPES = ("full", "tied", "diag", "spherical")
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
N, D, K, N_ITER, N_RESTARTS = 120, 3, 4, 25, 6
RTOL = 1e-8


def make_data(seed=0):
    """Two overlapping anisotropic groups with an offset: VB is still moving after N_ITER steps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D)) @ rng.normal(size=(D, D)) + np.array([5.0, -3.0, 10.0])
    x[: N // 2] += 3.0
    return x, rng.dirichlet(np.ones(K), N)


def sklearn_constant(sk, n, covariance_type):
    """``C`` of the module docstring, from scikit-learn's resolved priors."""
    beta0, nu0, c0 = sk.mean_precision_prior_, sk.degrees_of_freedom_prior_, sk.covariance_prior_
    d, k = D, sk.n_components
    log_det_c0 = {"full": lambda c: np.linalg.slogdet(c)[1], "tied": lambda c: np.linalg.slogdet(c)[1],
                  "diag": lambda c: np.sum(np.log(c)), "spherical": lambda c: d * np.log(c)}[covariance_type](c0)
    log_b0 = nu0 / 2 * log_det_c0 - nu0 * d / 2 * np.log(2) - multigammaln(nu0 / 2, d)
    g0 = sk.weight_concentration_prior_
    weights = (k * np.log(g0) if sk.weight_concentration_prior_type == "dirichlet_process"
               else gammaln(k * g0) - k * gammaln(g0))
    return (-n * d / 2 * np.log(2 * np.pi) + weights
            + k * (d / 2 * np.log(beta0) + log_b0 + d * (d - 1) / 4 * np.log(np.pi)))


def sklearn_trace(sk, x, resp0, n_iter):
    """Runs scikit-learn's VB from ``resp0``; returns the exact ELBO after each M-step."""
    sk._check_parameters(x)
    sk._initialize(x, resp0)
    constant = sklearn_constant(sk, len(x), sk.covariance_type)
    elbo = []
    for _ in range(n_iter):
        log_prob_norm, log_resp = sk._e_step(x)
        sk._m_step(x, log_resp)
        lower_bound = float(np.squeeze(sk._compute_lower_bound(log_resp, log_prob_norm)))
        log_rho = sk._estimate_weighted_log_prob(x)
        e_step_gain = np.sum(logsumexp(log_rho, axis=1)) - np.sum(np.exp(log_resp) * (log_rho - log_resp))
        elbo.append(lower_bound + constant + e_step_gain)
    sk._set_parameters(sk._get_parameters())  # fills weights_ and precisions_
    return np.array(elbo)


def sklearn_start(model, x, resp):
    """emjax parameters equal to scikit-learn's state after ``_initialize(x, resp)``."""
    sk = SkBayesianGaussianMixture(n_components=model.n_components, covariance_type=model.covariance_type,
                                   weight_concentration_prior_type=model.weight_concentration_prior_type,
                                   reg_covar=0.0)
    sk._check_parameters(x)
    sk._initialize(x, resp)
    return emjax.VBGMMParams(np.asarray(sk.weight_concentration_), sk.mean_precision_, sk.means_,
                             np.asarray(sk.degrees_of_freedom_), sk.covariances_, sk.mean_prior_,
                             np.asarray(sk.covariance_prior_))


EXPLICIT = dict(weight_concentration_prior=0.7, mean_precision_prior=0.3, mean_prior=[4.0, -2.0, 9.0],
                degrees_of_freedom_prior=4.5, covariance_prior=[[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 3.0]])
CASES = [(c, p) for c in COV_TYPES for p in PRIOR_TYPES]
#: the case make test runs (the others run in make test-slow)
FAST_CASE = ("diag", "dirichlet_process")


@pytest.mark.parametrize("covariance_type,prior_type",
                         [c if c == FAST_CASE else pytest.param(*c, marks=pytest.mark.slow) for c in CASES])
def test_matches_sklearn_every_iteration_and_never_decreases(x64, covariance_type, prior_type):
    """Restart 0 starts where scikit-learn does and must follow it; every restart (the others
    start from random responsibilities) must raise the bound at every iteration."""
    x, resp0 = make_data()
    sk = SkBayesianGaussianMixture(n_components=K, covariance_type=covariance_type, reg_covar=0.0,
                                   weight_concentration_prior_type=prior_type)
    with threadpool_limits(limits=1, user_api="blas"):
        reference = sklearn_trace(sk, x, resp0, N_ITER)
    model = BayesianGaussianMixture(K, covariance_type=covariance_type, weight_concentration_prior_type=prior_type)
    rng = np.random.default_rng(11)
    starts = [resp0] + [rng.dirichlet(np.full(K, 0.5), N) for _ in range(N_RESTARTS - 1)]
    init = jax.tree_util.tree_map(lambda *p: jnp.stack(p), *[sklearn_start(model, x, r) for r in starts])
    result = emjax.fit(model, x, None, n_init=N_RESTARTS, init_params=init, max_iter=N_ITER, tol=0.0,
                       throw=False).restarts
    history = np.asarray(result.history)
    assert history.dtype == np.float64
    np.testing.assert_allclose(history[0] * len(x), reference, rtol=RTOL)
    assert np.all(np.diff(reference) > 0)  # the reference itself is an increasing bound
    assert np.all(np.diff(history, axis=1) >= -1e-13 * np.abs(history[:, 1:]))
    assert np.all(np.asarray(result.status) == emjax.Status.MAX_ITER)
    p = jax.tree_util.tree_map(lambda a: a[0], result.params)
    for mine, theirs in ((p.weight_concentration, np.asarray(sk.weight_concentration_)),
                         (p.mean_precision, sk.mean_precision_), (p.means, sk.means_),
                         (p.degrees_of_freedom, sk.degrees_of_freedom_), (p.covariances, sk.covariances_)):
        np.testing.assert_allclose(np.asarray(mine), theirs, rtol=RTOL, atol=1e-12)


def test_explicit_priors_match_sklearn(x64):
    """Explicit priors also set the fit's standardisation: one M-step from given
    responsibilities (``init_from_responsibilities``) and the exact bound after a second one."""
    x, resp0 = make_data(seed=6)
    covariance_type, priors = "full", EXPLICIT
    sk = SkBayesianGaussianMixture(n_components=K, covariance_type=covariance_type, reg_covar=0.0, **priors)
    sk._check_parameters(x)
    sk._initialize(x, resp0)
    start = [np.array(v, copy=True) for v in (sk.mean_precision_, sk.means_, sk.covariances_)]
    with threadpool_limits(limits=1, user_api="blas"):
        reference = sklearn_trace(sk, x, resp0, 1)[0]
    model = BayesianGaussianMixture(K, covariance_type=covariance_type, **priors)
    p0 = model.init_from_responsibilities(x, resp0)
    for mine, theirs in zip((p0.mean_precision, p0.means, p0.covariances), start):
        np.testing.assert_allclose(mine, theirs, rtol=RTOL)

    @jax.jit
    def one_step_bound(p, data):
        p = model.m_step(model.e_step(p, data, jnp.ones(len(data)))[0], p)
        return p, model.e_step(p, data, jnp.ones(len(data)))[1] + model.log_prior(p)

    p1, bound = one_step_bound(p0, x)
    np.testing.assert_allclose(bound, reference, rtol=RTOL)
    np.testing.assert_allclose(p1.covariances, sk.covariances_, rtol=RTOL)


def numpy_predictive(params, x, covariance_type, prior_type):
    """Bishop (2006) eq. 10.81 with SciPy's multivariate t, from the variational parameters."""
    k, d = params.means.shape
    conc = np.asarray(params.weight_concentration)
    if prior_type == "dirichlet_distribution":
        weights = conc / conc.sum()
    else:
        a, b = conc
        weights = a / (a + b) * np.concatenate([[1.0], np.cumprod(b / (a + b))[:-1]])
        weights /= weights.sum()
    cov = np.asarray(params.covariances)
    if covariance_type == "tied":
        cov = np.broadcast_to(cov, (k, d, d))
    elif covariance_type == "diag":
        cov = np.stack([np.diag(c) for c in cov])
    elif covariance_type == "spherical":
        cov = np.stack([c * np.eye(d) for c in cov])
    nu = np.broadcast_to(np.asarray(params.degrees_of_freedom), (k,))
    beta = np.asarray(params.mean_precision)
    dens = [np.log(weights[j]) + multivariate_t(np.asarray(params.means[j]),
                                                (1 + beta[j]) * nu[j] / ((nu[j] + 1 - d) * beta[j]) * cov[j],
                                                df=nu[j] + 1 - d).logpdf(x) for j in range(k)]
    return logsumexp(np.stack(dens), axis=0)


def random_params(covariance_type, prior_type, seed=4):
    """Valid variational parameters drawn at random (NumPy)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(K, D, D))
    full = np.einsum("kde,kfe->kdf", a, a) + np.eye(D)
    conc = rng.uniform(0.5, 30.0, size=(K,) if prior_type == "dirichlet_distribution" else (2, K))
    covariances = {"full": full, "tied": full[0], "diag": rng.uniform(0.5, 2.0, size=(K, D)),
                   "spherical": rng.uniform(0.5, 2.0, size=K)}[covariance_type]
    dof = rng.uniform(D - 0.5, 40.0, size=() if covariance_type == "tied" else K)
    return emjax.VBGMMParams(conc, rng.uniform(0.5, 40.0, size=K), rng.normal(size=(K, D)) * 3, dof,
                             covariances, np.zeros(D), np.eye(D))


@pytest.mark.parametrize("covariance_type,prior_type", [("full", "dirichlet_process"), ("tied", "dirichlet_distribution"),
                                                        ("diag", "dirichlet_process"), ("spherical", "dirichlet_distribution")])
def test_densities_of_given_params(x64, covariance_type, prior_type):
    """``log_prob`` is the Student t predictive (SciPy); ``posterior``, ``predict`` and the plug-in
    weights are scikit-learn's ``predict_proba``, ``predict`` and ``weights_`` for the same state."""
    x = make_data(seed=3)[0][:20] - np.array([5.0, -3.0, 10.0])
    model = BayesianGaussianMixture(K, covariance_type=covariance_type, weight_concentration_prior_type=prior_type)
    params = random_params(covariance_type, prior_type)
    log_prob, posterior, labels, weights = jax.jit(lambda p: (
        model.log_prob(p, x), model.posterior(p, x), model.predict(p, x), model.mixture_params(p).weights))(params)
    np.testing.assert_allclose(log_prob, numpy_predictive(params, x, covariance_type, prior_type), rtol=1e-10)
    sk = SkBayesianGaussianMixture(n_components=K, covariance_type=covariance_type,
                                   weight_concentration_prior_type=prior_type)
    conc = np.asarray(params.weight_concentration)
    sk._set_parameters((conc if prior_type == "dirichlet_distribution" else (conc[0], conc[1]),
                        params.mean_precision, params.means, params.degrees_of_freedom, params.covariances,
                        _compute_precision_cholesky(params.covariances, covariance_type)))
    np.testing.assert_allclose(weights, sk.weights_, rtol=1e-12)
    np.testing.assert_allclose(posterior, sk.predict_proba(x), rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(labels, sk.predict(x))


@pytest.mark.slow  # K=10 to convergence (tol 1e-6, up to 300 iterations), twice
def test_unneeded_components_shrink():
    """K=10 on 3 well separated blobs (float32, default settings); then the same program with
    random row weights: no restart may report a decreasing bound."""
    x, labels = blobs(n=300, d=2, k=3, seed=2, spread=8.0)
    model = BayesianGaussianMixture(10)
    res = emjax.fit(model, x, jax.random.key(0), n_init=3, max_iter=300, tol=1e-6)
    weights = np.asarray(model.mixture_params(res.params).weights)
    assert weights.dtype == np.float32
    assert np.sum(weights < 0.01) >= 6, np.round(np.sort(weights), 4)
    found = np.asarray(model.predict(res.params, x))
    assert all(len(np.unique(found[labels == j])) == 1 for j in range(3))  # one component per blob
    row_weights = np.random.default_rng(3).uniform(0.1, 3.0, size=len(x)).astype(np.float32)
    weighted = emjax.fit(model, x, jax.random.key(1), n_init=3, weights=row_weights, max_iter=300,
                         tol=1e-6, throw=False)
    assert set(np.asarray(weighted.restarts.status).tolist()) <= {int(emjax.Status.CONVERGED),
                                                                  int(emjax.Status.MAX_ITER)}


def test_integer_weights_equal_repeated_rows(x64):
    """Weights are frequencies and zero-weight rows count for nothing: the default prior (ddof=1
    covariance), the M-step and the bound (padded to one shape, so one compiled program)."""
    x, resp0 = make_data(seed=5)
    counts = np.random.default_rng(1).integers(1, 3, size=N)
    x_rep, resp_rep = np.repeat(x, counts, axis=0), np.repeat(resp0, counts, axis=0)
    pad = len(x_rep) - N
    x_pad, resp_pad = np.concatenate([x, x_rep[:pad] * 7.0]), np.concatenate([resp0, resp_rep[:pad]])
    weights_pad = np.concatenate([counts, np.zeros(pad)]).astype(float)
    model = BayesianGaussianMixture(K, covariance_type="full")
    weighted = model.init_from_responsibilities(x_pad, resp_pad, weights=weights_pad)
    repeated = model.init_from_responsibilities(x_rep, resp_rep)
    for a, b in zip(weighted, repeated):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    bound = jax.jit(lambda p, data, w: model.e_step(p, data, w)[1] + model.log_prior(p))
    np.testing.assert_allclose(bound(weighted, x_pad, weights_pad),
                               bound(repeated, x_rep, np.ones(len(x_rep))), rtol=1e-10)


@pytest.mark.parametrize("kwargs,match", [
    (dict(covariance_type="ful"), "covariance_type must be one of .*'ful'"),
    (dict(weight_concentration_prior_type="dp"), "weight_concentration_prior_type must be one of .*'dp'"),
    (dict(weight_concentration_prior=-1.0), "weight_concentration_prior must be a finite number > 0.*-1.0"),
    (dict(mean_precision_prior=0.0), "mean_precision_prior must be a finite number > 0.*0.0"),
    (dict(covariance_prior=[[1.0, 2.0], [2.0, 1.0]]), "positive definite; its smallest eigenvalue is -1"),
    (dict(covariance_prior=[1.0, 1.0]), r"must have shape \(n_features, n_features\); got \(2,\)"),
    (dict(covariance_type="diag", covariance_prior=[1.0, -2.0]), "must be positive; got -2.0 at index 1"),
    (dict(mean_prior=[0.0, np.nan]), r"mean_prior must be finite; got nan at index \(1,\)"),
    (dict(n_components=0), "n_components must be a positive integer; got 0"),
    (dict(init_params="kmeans+"), "init_params must be one of .*'kmeans\\+'"),
])
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BayesianGaussianMixture(**{"n_components": 2, **kwargs})


@pytest.mark.parametrize("kwargs,data,match", [
    (dict(degrees_of_freedom_prior=1.0), None, r"degrees_of_freedom_prior must be > n_features - 1 = 2; got 1.0"),
    (dict(mean_prior=[0.0, 0.0]), None, "mean_prior must have length n_features=3; got 2"),
    (dict(covariance_prior=np.eye(2)), None, r"covariance_prior must have 3 rows \(n_features\); got shape \(2, 2\)"),
    ({}, "nan", r"data contains 1 NaN value\(s\); the first at index \(4, 1\)"),
])
def test_bad_data_raise(kwargs, data, match):
    x = make_data()[0]
    if data == "nan":
        x[4, 1] = np.nan
    with pytest.raises(ValueError, match=match):
        emjax.fit(BayesianGaussianMixture(2, **kwargs), x, jax.random.key(0))


def test_bad_responsibilities_raise():
    x, resp = make_data()
    model = BayesianGaussianMixture(K)
    with pytest.raises(ValueError, match=r"resp must have shape \(120, 4\) \(rows, n_components\); got \(120, 3\)"):
        model.init_from_responsibilities(x, resp[:, :3])
    resp[7, 2] = np.inf
    with pytest.raises(ValueError, match=r"resp contains 1 inf value\(s\); the first at index \(7, 2\)"):
        model.init_from_responsibilities(x, resp)
