r"""The default ``pseudo_count`` (MAP-EM) of GaussianMixture against a NumPy reference.

The reference is written from the docstring of :mod:`emjax.models.gaussian_mixture`: the fit runs
on standardised data (centred, unit variance per feature; spherical: one common scale, the square
root of the mean per-feature variance), the prior lives in those coordinates,

* weights: symmetric Dirichlet(1 + c)                  -> log prior  c * sum_k log pi_k
* full: Wishart on each precision Lambda_k             -> c/2 log|Lambda_k| - psi/2 tr Lambda_k
* tied: one Wishart with K c on the shared precision  -> K c/2 log|Lambda| - psi/2 tr Lambda
* diag: Gamma on each precision lambda_kj            -> c/2 log lambda_kj - psi/2 lambda_kj
* spherical: the Wishart per component at Lambda_k = lambda_k I
                                                    -> c d/2 log lambda_k - psi d/2 lambda_k
* means: flat,

with ``c = PSEUDO_COUNT`` and ``psi = reg_covar``, and the M-step is the maximiser of the expected
complete log-likelihood plus that log prior. Densities come from SciPy. All in float64.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import emjax
from helpers import full_covariances
from emjax.components import PSEUDO_COUNT

C = PSEUDO_COUNT
COV_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(scope="module", autouse=True)
def _x64():
    """float64 for this module's tests only (x64 is process-global: switched on here and
    restored afterwards, so modules collected alongside are unaffected)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    assert jnp.zeros(()).dtype == jnp.float64
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


# --------------------------------------------------------------------------- NumPy reference
def standardisation(x, w, cov_type):
    """``(shift, scale)`` with ``x_std = (x - shift) / scale``, weighted as the fit is."""
    total = w.sum()
    shift = w @ x / total
    var = w @ (x - shift) ** 2 / total
    if cov_type == "spherical":
        var = np.full_like(var, var.mean())
    return shift, np.sqrt(var)


def to_standard(params, shift, scale, cov_type):
    w, m, cov = params
    outer = np.outer(scale, scale)
    cov = {"full": lambda: cov / outer, "tied": lambda: cov / outer,
           "diag": lambda: cov / scale ** 2, "spherical": lambda: cov / scale[0] ** 2}[cov_type]()
    return w, (m - shift) / scale, cov


def from_standard(params, shift, scale, cov_type):
    w, m, cov = params
    outer = np.outer(scale, scale)
    cov = {"full": lambda: cov * outer, "tied": lambda: cov * outer,
           "diag": lambda: cov * scale ** 2, "spherical": lambda: cov * scale[0] ** 2}[cov_type]()
    return w, m * scale + shift, cov


def log_joint(x, params, cov_type):
    """``log pi_k + log N(x_n | m_k, Sigma_k)``, shape ``(n, k)``, by SciPy."""
    w, m, cov = params
    k, d = m.shape
    covs = full_covariances(cov, cov_type, k, d)
    return np.stack([np.log(w[j]) + multivariate_normal(m[j], covs[j]).logpdf(x).reshape(-1)
                     for j in range(k)], axis=1)


def mean_log_likelihood(x, w, params, cov_type):
    return w @ logsumexp(log_joint(x, params, cov_type), axis=1) / w.sum()


def log_prior(params_std, cov_type, psi):
    """The docstring's log prior (normalising constants dropped), standardised coordinates."""
    w, m, cov = params_std
    k, d = m.shape
    lp = C * np.sum(np.log(w))
    if cov_type == "full":
        for s in cov:
            prec = np.linalg.inv(s)
            lp += C / 2 * np.linalg.slogdet(prec)[1] - psi / 2 * np.trace(prec)
    elif cov_type == "tied":
        prec = np.linalg.inv(cov)
        lp += k * C / 2 * np.linalg.slogdet(prec)[1] - psi / 2 * np.trace(prec)
    elif cov_type == "diag":
        lp += np.sum(C / 2 * np.log(1 / cov) - psi / 2 / cov)
    else:
        lp += np.sum(C * d / 2 * np.log(1 / cov) - psi * d / 2 / cov)
    return lp


def objective(x, w, params, cov_type, psi):
    """Mean log-likelihood (user units) + log prior (standardised) / total weight."""
    shift, scale = standardisation(x, w, cov_type)
    return (mean_log_likelihood(x, w, params, cov_type)
            + log_prior(to_standard(params, shift, scale, cov_type), cov_type, psi) / w.sum())


def responsibilities(x, w, params, cov_type):
    lj = log_joint(x, params, cov_type)
    return np.exp(lj - logsumexp(lj, axis=1, keepdims=True)) * w[:, None]


def m_step_standard(xs, r, old_means, cov_type, psi):
    """The docstring's closed-form MAP M-step from weighted responsibilities ``r``."""
    n, d = xs.shape
    k = r.shape[1]
    counts = r.sum(axis=0)
    means = np.array([r[:, j] @ xs / counts[j] if counts[j] > 0 else old_means[j]
                      for j in range(k)])
    scatter = np.stack([(r[:, j, None] * (xs - means[j])).T @ (xs - means[j]) for j in range(k)])
    weights = (counts + C) / (counts.sum() + k * C)
    if cov_type == "full":
        cov = (scatter + psi * np.eye(d)) / (counts + C)[:, None, None]
    elif cov_type == "tied":
        cov = (scatter.sum(axis=0) + psi * np.eye(d)) / (counts.sum() + k * C)
    elif cov_type == "diag":
        cov = (np.diagonal(scatter, axis1=1, axis2=2) + psi) / (counts + C)[:, None]
    else:
        cov = (np.trace(scatter, axis1=1, axis2=2) + d * psi) / (d * (counts + C))
    return weights, means, cov


def reference_step(x, w, params, cov_type, psi):
    """One MAP-EM step: standardise, E-step, M-step, map back to the data's units."""
    shift, scale = standardisation(x, w, cov_type)
    xs = (x - shift) / scale
    p_std = to_standard(params, shift, scale, cov_type)
    r = responsibilities(xs, w, p_std, cov_type)
    return from_standard(m_step_standard(xs, r, p_std[1], cov_type, psi), shift, scale, cov_type)


def expected_complete_log_posterior(xs, r, params_std, cov_type, psi):
    """Q(theta) + log prior(theta) for fixed responsibilities ``r`` (standardised units)."""
    return np.sum(r * log_joint(xs, params_std, cov_type)) + log_prior(params_std, cov_type, psi)


# --------------------------------------------------------------------------- data
SHIFT = np.array([100.0, -5.0, 0.3])
SCALE = np.array([1e-2, 1.0, 30.0])


def make_data(seed=0, n=60, k=3):
    """Three overlapping clusters, features on very different scales and offsets."""
    rng = np.random.default_rng(seed)
    d = len(SCALE)
    centres = rng.normal(scale=1.5, size=(k, d))
    labels = rng.integers(0, k, size=n)
    z = centres[labels] + rng.normal(size=(n, d)) @ (np.eye(d) + 0.4 * rng.normal(size=(d, d)))
    return z * SCALE + SHIFT


def make_init(x, cov_type, k=3, seed=1):
    """Valid, deliberately poor starting parameters in the data's units."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    scale = SCALE if cov_type != "spherical" else np.full(d, np.sqrt(np.mean(SCALE ** 2)))
    w0 = rng.dirichlet(np.full(k, 4.0))
    m0 = x[rng.choice(n, k, replace=False)] + 0.3 * rng.normal(size=(k, d)) * SCALE
    a = 0.4 * rng.normal(size=(k, d, d))
    full = (np.einsum("kde,kfe->kdf", a, a) + np.eye(d)) * np.outer(scale, scale)
    cov0 = {"full": full, "tied": full[1],
            "diag": rng.uniform(0.5, 2.0, size=(k, d)) * scale ** 2,
            "spherical": rng.uniform(0.5, 2.0, size=k) * scale[0] ** 2}[cov_type]
    return w0, m0, cov0


def sample_weights(n, seed=11):
    w = np.random.default_rng(seed).uniform(0.0, 2.0, size=n)
    w[::7] = 0.0
    return w


def as_params(p):
    return emjax.GMMParams(*(jnp.asarray(a) for a in p))


def as_numpy(p):
    return tuple(np.asarray(a, dtype=np.float64) for a in p)


def assert_params_close(got, want, rtol, what=""):
    for name, g, e in zip(("weights", "means", "covariances"), got, want):
        np.testing.assert_allclose(np.asarray(g), e, rtol=rtol, atol=0, err_msg=f"{name} {what}")


# --------------------------------------------------------------------------- one step
CASES = [pytest.param(ct, False, 1e-6, id=f"{ct}-unweighted-psi1e-6") for ct in COV_TYPES] + [
    pytest.param(ct, True, 0.1, id=f"{ct}-weighted-psi0.1") for ct in COV_TYPES]


@pytest.mark.parametrize("cov_type,weighted,psi", CASES)
def test_one_step_and_objective_match_numpy_reference(cov_type, weighted, psi):
    x = make_data()
    w = sample_weights(len(x)) if weighted else np.ones(len(x))
    p0 = make_init(x, cov_type)
    model = emjax.GaussianMixture(3, cov_type, reg_covar=psi)
    emjax_w = w if weighted else None

    r1 = emjax.em(model, as_params(p0), x, emjax_w, max_iter=1, tol=0.0, throw=False)
    assert int(r1.status) == emjax.Status.MAX_ITER
    ref1 = reference_step(x, w, p0, cov_type, psi)
    assert_params_close(r1.params, ref1, 1e-10, "after one step")

    r2 = emjax.em(model, r1.params, x, emjax_w, max_iter=1, tol=0.0, throw=False)
    ref2 = reference_step(x, w, ref1, cov_type, psi)
    assert_params_close(r2.params, ref2, 1e-10, "after two steps")

    # The reported log-likelihood is the plain weighted mean log-likelihood in the data's units.
    for r, ref in ((r1, ref1), (r2, ref2)):
        np.testing.assert_allclose(float(r.log_likelihood), mean_log_likelihood(x, w, ref, cov_type),
                                   rtol=1e-11)
    # The monitored objective is log-likelihood + the docstring's log prior (standardised
    # coordinates) over the total weight, up to a constant: compare its change over one step.
    f1, f2 = objective(x, w, ref1, cov_type, psi), objective(x, w, ref2, cov_type, psi)
    assert f2 > f1  # MAP-EM never lowers it, and these data are far from converged
    np.testing.assert_allclose(float(r2.objective) - float(r1.objective), f2 - f1,
                               rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(float(r1.history[0]), float(r1.objective), rtol=1e-14)
    # The prior part on its own: objective - log-likelihood changes as log_prior / W does.
    shift, scale = standardisation(x, w, cov_type)
    lp1 = log_prior(to_standard(ref1, shift, scale, cov_type), cov_type, psi) / w.sum()
    lp2 = log_prior(to_standard(ref2, shift, scale, cov_type), cov_type, psi) / w.sum()
    got = (float(r2.objective) - float(r2.log_likelihood)) - (float(r1.objective)
                                                              - float(r1.log_likelihood))
    np.testing.assert_allclose(got, lp2 - lp1, rtol=1e-7, atol=1e-13)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_standardisation_and_prior_strength_are_visible(cov_type):
    """The reference would not match a prior in raw units or an M-step without pseudo-counts, so
    the comparison above really tests the standardised prior."""
    x = make_data()
    w = np.ones(len(x))
    p0 = make_init(x, cov_type)
    model = emjax.GaussianMixture(3, cov_type, reg_covar=0.1)
    got = emjax.em(model, as_params(p0), x, max_iter=1, tol=0.0, throw=False).params
    # Prior in raw units: standardise with shift only.
    xs = x - x.mean(axis=0)
    raw = m_step_standard(xs, responsibilities(x, w, p0, cov_type), p0[1] - x.mean(axis=0),
                          cov_type, 0.1)
    assert not np.allclose(np.asarray(got.covariances), raw[2], rtol=1e-6)
    # The weights carry the Dirichlet pseudo-count: not the plain N_k / N.
    counts = responsibilities(x, w, p0, cov_type).sum(axis=0)
    assert not np.allclose(np.asarray(got.weights), counts / counts.sum(), rtol=1e-9, atol=0)
    np.testing.assert_allclose(np.asarray(got.weights), (counts + C) / (counts.sum() + 3 * C),
                               rtol=1e-10)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_one_step_maximises_expected_complete_log_posterior(cov_type):
    """Independent of the closed form: emjax's M-step beats every nearby parameter value on
    Q(theta) + log p(theta), evaluated by SciPy in standardised coordinates."""
    psi = 0.1
    x = make_data()
    w = np.ones(len(x))
    p0 = make_init(x, cov_type)
    model = emjax.GaussianMixture(3, cov_type, reg_covar=psi)
    got = as_numpy(emjax.em(model, as_params(p0), x, max_iter=1, tol=0.0, throw=False).params)
    shift, scale = standardisation(x, w, cov_type)
    xs = (x - shift) / scale
    r = responsibilities(xs, w, to_standard(p0, shift, scale, cov_type), cov_type)
    best = to_standard(got, shift, scale, cov_type)
    value = expected_complete_log_posterior(xs, r, best, cov_type, psi)

    rng = np.random.default_rng(0)
    eps = 1e-3
    for trial in range(30):
        wt, m, cov = (np.array(a) for a in best)
        block = trial % 3
        if block == 0:  # stay on the simplex
            wt = wt * np.exp(eps * rng.normal(size=wt.shape))
            wt /= wt.sum()
        elif block == 1:
            m = m + eps * rng.normal(size=m.shape)
        elif cov_type in ("full", "tied"):  # stay positive definite
            a = np.eye(cov.shape[-1]) + eps * rng.normal(size=cov.shape)
            cov = a @ cov @ np.swapaxes(a, -1, -2)
        else:
            cov = cov * np.exp(eps * rng.normal(size=cov.shape))
        perturbed = expected_complete_log_posterior(xs, r, (wt, m, cov), cov_type, psi)
        assert perturbed < value + 1e-10 * abs(value), (trial, perturbed - value)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_empty_component_follows_the_prior(cov_type):
    """A component no observation reaches (responsibilities underflow to exactly 0) keeps its
    mean, gets weight c / (N + K c) and, per the prior, a finite covariance (collapse guard off);
    with the guard on (the default) it has fewer than the rows it needs, so the restart ends
    DEGENERATE (tied covariances never collapse)."""
    x = make_data()
    w = np.ones(len(x))
    wt0, m0, cov0 = make_init(x, cov_type)
    m0 = m0.copy()
    m0[2] = SHIFT + 1e4 * SCALE  # ~1e4 standard deviations away from every row
    p0 = (wt0, m0, cov0)
    guarded = emjax.em(emjax.GaussianMixture(3, cov_type), as_params(p0), x, max_iter=1, tol=0.0,
                       throw=False)
    expected = emjax.Status.MAX_ITER if cov_type == "tied" else emjax.Status.DEGENERATE
    assert int(guarded.status) == expected
    model = emjax.GaussianMixture(3, cov_type, collapse_guard=False)
    r = emjax.em(model, as_params(p0), x, max_iter=1, tol=0.0, throw=False)
    assert int(r.status) == emjax.Status.MAX_ITER
    got = as_numpy(r.params)
    assert all(np.isfinite(a).all() for a in got)
    ref = reference_step(x, w, p0, cov_type, 1e-6)
    assert_params_close(got, ref, 1e-10)
    np.testing.assert_allclose(got[0][2], C / (len(x) + 3 * C), rtol=1e-12)
    np.testing.assert_allclose(got[1][2], m0[2], rtol=1e-14)  # up to the standardising round trip


# --------------------------------------------------------------------------- monotone fits
@st.composite
def datasets(draw):
    n = draw(st.integers(20, 80))
    d = draw(st.integers(1, 3))
    k = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    clusters = draw(st.integers(1, 5))
    spread = draw(st.floats(0.0, 8.0))
    log_scales = draw(st.lists(st.floats(-4.0, 4.0), min_size=d, max_size=d))
    offsets = draw(st.lists(st.floats(-1e4, 1e4), min_size=d, max_size=d))
    decimals = draw(st.sampled_from([None, None, 1, 0]))  # rounding makes ties and duplicates
    rng = np.random.default_rng(seed)
    xs = []
    for _ in range(5):  # five datasets of one shape: one compilation, more coverage
        centres = rng.normal(scale=spread, size=(clusters, d))
        z = centres[rng.integers(0, clusters, size=n)] + rng.normal(
            size=(n, d)) * rng.uniform(0.1, 2.0, size=d)
        if decimals is not None:
            z = np.round(z, decimals)
            z[0] += 0.5  # never every row identical in a feature
        xs.append(z * 10.0 ** np.array(log_scales) + np.array(offsets))
    return k, xs


@pytest.mark.slow
@pytest.mark.parametrize("cov_type", COV_TYPES)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=datasets())
def test_fit_objective_never_decreases(cov_type, case):
    """Default fit settings (k-means++ starts, the MAP prior, tol, max_iter); every example
    compiles once (~3 s), so few examples, each with five datasets and eight restarts."""
    k, xs = case
    model = emjax.GaussianMixture(k, cov_type)
    for i, x in enumerate(xs):
        f = emjax.fit(model, x, jax.random.key(i), n_init=8, throw=False)
        statuses = [emjax.Status(int(s)) for s in np.asarray(f.restarts.status)]
        assert emjax.Status.DECREASED not in statuses, statuses
        assert emjax.Status.NONFINITE not in statuses, statuses
        history = np.asarray(f.restarts.history)
        n_iter = np.asarray(f.restarts.n_iter)
        for h, it, status in zip(history, n_iter, statuses):
            # NaN padding past n_iter; a start the collapse guard rejects stops before iterating
            assert (1 if status.healthy else 0) <= it <= h.shape[0] and np.all(np.isnan(h[it:]))
            if status.healthy:
                assert np.all(np.isfinite(h[:it]))
            finite = h[np.isfinite(h)]
            steps = np.diff(finite)
            assert np.all(steps >= -1e-9 * (1 + np.abs(finite[:-1]))), steps.min()
