"""Expanded (feature-form) Gaussian E-steps and their rounding guard.

References: float64 NumPy written here (log-densities, responsibilities, moments about the means,
the guard's bound A_k) and scikit-learn's float64 EM from the same starting point. The expanded
forms run in float32; tolerances come from the bound in emjax.components.gaussian_expanded:
log-densities err by at most (F + d + 2) eps A_k, second moments by about eps N_k (X^2 + |m_k|^2)
per summed row block.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import full_covariances
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import emjax
from emjax.components import gaussian as g
from emjax.components import gaussian_expanded as ge

UNBATCHED = emjax.Formulation(unbatched=True)  # the guarded E-step, as emjax.fit traces one restart

N, D, K = 600, 6, 3
COV_TYPES = ["full", "tied", "diag", "spherical"]
EPS32 = np.finfo(np.float32).eps


def _standardised_mixture(covariance_type, seed=0, n=N, d=D, k=K):
    """float32 standardised rows of a K-component mixture drawn as the benchmarks draw theirs
    (centres about 5 cluster widths apart, axis scales 0.5-1.5, random rotations) and float64
    parameters close to it."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5.0 / np.sqrt(2 * d), (k, d))
    chol = np.linalg.qr(rng.normal(size=(k, d, d)))[0] * rng.uniform(0.5, 1.5, (k, 1, d))
    labels = rng.integers(k, size=n)
    x = centres[labels] + np.einsum("nde,ne->nd", chol[labels], rng.normal(size=(n, d)))
    x = (x - x.mean(0)) / x.std(0)
    means = np.stack([x[labels == j].mean(0) for j in range(k)])
    full = np.stack([np.cov(x[labels == j].T) for j in range(k)])
    cov = {"full": full, "tied": full.mean(0), "diag": np.diagonal(full, axis1=1, axis2=2),
           "spherical": np.diagonal(full, axis1=1, axis2=2).mean(1)}[covariance_type]
    weights = np.bincount(labels, minlength=k) / n
    return x.astype(np.float32), weights, means, cov


def _reference_log_density(x, means, cov, covariance_type):
    """float64 log N(x_n | m_k, Sigma_k), (k, n), by solves against Sigma_k."""
    x, means = np.asarray(x, np.float64), np.asarray(means, np.float64)
    k, d = means.shape
    out = []
    for m, s in zip(means, full_covariances(cov, covariance_type, k, d)):
        diff = x - m
        maha = np.einsum("nd,nd->n", diff, np.linalg.solve(s, diff.T).T)
        out.append(-0.5 * (d * np.log(2 * np.pi) + np.linalg.slogdet(s)[1] + maha))
    return np.stack(out)


def _reference_bound(x, means, cov, covariance_type):
    """eps32 * max_k A_k of the guard, in float64, about the coordinate-wise median of the means."""
    x, means = np.asarray(x, np.float64), np.asarray(means, np.float64)
    about = np.median(means, axis=0)
    x, means = x - about, means - about
    k, d = means.shape
    prec = np.linalg.inv(full_covariances(cov, covariance_type, k, d))
    if covariance_type in ("full", "tied"):
        # every term of the quadratic form, in absolute value, summed per row: the largest row
        for_rows = np.abs(x)[None] + np.abs(means)[:, None]  # (k, n, d)
        a = 0.5 * np.einsum("knc,kce,kne->kn", for_rows, np.sqrt(
            np.abs(np.diagonal(prec, axis1=1, axis2=2))[:, :, None]
            * np.abs(np.diagonal(prec, axis1=1, axis2=2))[:, None, :]), for_rows).max(1)
    else:
        p = np.diagonal(prec, axis1=1, axis2=2)
        a = (p * ((x * x).max(0) + means * means)).sum(1)
    return EPS32 * a.max()


def _as_float32(cov, means):
    return jnp.asarray(np.asarray(cov, np.float32)), jnp.asarray(np.asarray(means, np.float32))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_expanded_log_density_and_statistics_match_float64(covariance_type):
    x, weights, means, cov = _standardised_mixture(covariance_type)
    cov32, means32 = _as_float32(cov, means)
    prec_chol = g.precision_cholesky(cov32, covariance_type)
    bound = float(ge.expansion_error(jnp.asarray(x), means32, prec_chol, covariance_type))
    assert bound <= ge.MAX_EXPANSION_ERROR  # well conditioned: the guard takes the expanded form
    np.testing.assert_allclose(bound, _reference_bound(x, means32, cov32, covariance_type), rtol=1e-4)

    f = ge.features(jnp.asarray(x), covariance_type, ge.origin(means32))
    assert f.shape == (ge.n_features(D, covariance_type), N) and f.dtype == jnp.float32
    got = np.asarray(ge.log_density(f, ge.log_density_weights(means32, prec_chol, covariance_type)))
    want = _reference_log_density(x, means32, cov32, covariance_type)
    worst = (ge.n_features(D, covariance_type) + D + 2) * bound
    np.testing.assert_allclose(got, want, rtol=0, atol=worst)
    assert np.max(np.abs(got - want)) < 0.1 * worst  # and typically far inside it

    r = np.exp(want + np.log(weights)[:, None] - logsumexp(want + np.log(weights)[:, None], axis=0))
    counts, sums, second = ge.sufficient_stats(f, jnp.asarray(r, jnp.float32), means32, covariance_type)
    x64, m64 = x.astype(np.float64), np.asarray(means32, np.float64)
    diff = x64[None] - m64[:, None]  # (k, n, d)
    want_second = np.einsum("kn,knd,kne->kde", r, diff, diff)
    if covariance_type == "tied":
        want_second = want_second.sum(0)
    elif covariance_type in ("diag", "spherical"):
        want_second = np.diagonal(want_second, axis1=1, axis2=2)
    np.testing.assert_allclose(counts, r.sum(1), rtol=1e-5)
    np.testing.assert_allclose(sums, r @ x64, rtol=1e-4, atol=1e-4 * np.abs(x64).max() * r.sum(1).max())
    # moments about zero moved to the means: error ~ eps N_k (X^2 + |m_k|^2) per row block
    scale = r.sum(1).max() * ((x64 ** 2).sum(1).max() + (m64 ** 2).sum(1).max())
    np.testing.assert_allclose(second, want_second, rtol=0, atol=64 * EPS32 * scale)


def _tight_far_mixture(covariance_type, seed=0):
    """Tight components (sd 1e-3 to 3e-3) 3-8 units from the origin, and parameters near them."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(3, 8, (K, D)) * rng.choice([-1, 1], (K, D))
    sd = rng.uniform(1e-3, 3e-3, (K, 1))
    labels = rng.integers(K, size=N)
    x = (centres[labels] + sd[labels] * rng.normal(size=(N, D))).astype(np.float32)
    means = centres + 0.3 * sd * rng.normal(size=(K, D))
    var = 1.3 * sd[:, 0] ** 2
    cov = {"full": var[:, None, None] * np.eye(D), "tied": var.mean() * np.eye(D),
           "diag": np.repeat(var[:, None], D, 1), "spherical": var}[covariance_type]
    return x, np.array([0.5, 0.3, 0.2]), means, cov


def _digits_like_mixture(covariance_type, seed=0):
    """Standardised data with a feature that is constant within every component (a pixel of the
    digits, blank in some digits and inked in others), whose variance is then the prior's 1e-6: precisions of 1e6 (full, tied, diag;
    a spherical model has no per-feature variance to collapse)."""
    x, weights, means, cov = _standardised_mixture(covariance_type, seed)
    # constant within each component, at a different value in each (one value for all would be
    # zero about the expanded form's origin, the components' mean, and harmless)
    labels = np.argmin(((x[:, None, 1:] - means[None, :, 1:]) ** 2).sum(-1), axis=1)
    levels = np.array([1.5, -0.5, 0.8])[:K]
    x[:, 0] = levels[labels]
    means = means.copy()
    means[:, 0] = levels
    cov = np.array(cov, copy=True)
    if covariance_type in ("full", "tied"):
        cov[..., 0, :] = 0
        cov[..., :, 0] = 0
        cov[..., 0, 0] = 1e-6
    else:
        cov[:, 0] = 1e-6
    return x, weights, means, cov


BADLY_SCALED = [pytest.param(_tight_far_mixture, c, id=f"tight-far-{c}") for c in COV_TYPES] + [
    pytest.param(_digits_like_mixture, c, id=f"digits-{c}") for c in ("full", "tied", "diag")]


@pytest.mark.parametrize("make, covariance_type", BADLY_SCALED)
def test_badly_scaled_data_fall_back_to_the_exact_forms(make, covariance_type):
    x, weights, means, cov = make(covariance_type)
    cov32, means32 = _as_float32(cov, means)
    prec_chol = g.precision_cholesky(cov32, covariance_type)
    assert not bool(ge.expansion_is_accurate(jnp.asarray(x), means32, prec_chol, covariance_type))

    model = emjax.GaussianMixture(K, covariance_type=covariance_type).with_formulation(UNBATCHED)
    params = emjax.GMMParams(jnp.asarray(weights, jnp.float32), means32, cov32)
    w = jnp.ones((N,), jnp.float32)
    (counts, sums, second), loglik = jax.jit(model.e_step)(params, jnp.asarray(x), w)
    lp = _reference_log_density(x, means32, cov32, covariance_type) + np.log(weights)[:, None]
    row_ll = logsumexp(lp, axis=0)
    np.testing.assert_allclose(loglik, row_ll.sum(), rtol=2e-6)

    # the expanded form alone is far off on these data: the fallback is what kept it exact
    expanded = ge.log_density(ge.features(jnp.asarray(x), covariance_type, ge.origin(means32)),
                              ge.log_density_weights(means32, prec_chol, covariance_type))
    lp_expanded = np.asarray(expanded, np.float64) + np.log(weights)[:, None]
    exact_error = abs(float(loglik) - row_ll.sum())
    expanded_error = abs(logsumexp(lp_expanded, axis=0).sum() - row_ll.sum())
    assert expanded_error > 100 * exact_error


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_guard_decides_by_the_bound(covariance_type):
    x, _, means, cov = _standardised_mixture(covariance_type, seed=3)
    for factor in (1.0, 1e-2, 1e-4):  # shrinking covariances raise the bound past the threshold
        cov32, means32 = _as_float32(np.asarray(cov) * factor, means)
        prec_chol = g.precision_cholesky(cov32, covariance_type)
        want = _reference_bound(x, means32, cov32, covariance_type)
        got = float(ge.expansion_error(jnp.asarray(x), means32, prec_chol, covariance_type))
        np.testing.assert_allclose(got, want, rtol=1e-4)
        decided = bool(ge.expansion_is_accurate(jnp.asarray(x), means32, prec_chol, covariance_type))
        assert decided == (want <= ge.MAX_EXPANSION_ERROR)
    nan_chol = jnp.full_like(prec_chol, jnp.nan)
    assert not bool(ge.expansion_is_accurate(jnp.asarray(x), means32, nan_chol, covariance_type))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
def test_a_constant_feature_keeps_the_expanded_form(covariance_type):
    """A feature that is constant in every row and mean (standardising leaves such a column at a
    value set by rounding: 1e-3 with a precision of 2e11 in a W2-shaped fit; here 1.5 and the
    variance floor's 1e-6): the guard, about the components' mean, still accepts the expanded
    form, and its log-densities match float64 NumPy."""
    x, weights, means, cov = _standardised_mixture(covariance_type, seed=5)
    x[:, 0] = 1.5
    means = means.copy()
    means[:, 0] = 1.5
    cov = np.array(cov, copy=True)
    if covariance_type in ("full", "tied"):
        cov[..., 0, :] = 0
        cov[..., :, 0] = 0
        cov[..., 0, 0] = 1e-6
    else:
        cov[:, 0] = 1e-6
    cov32, means32 = _as_float32(cov, means)
    prec_chol = g.precision_cholesky(cov32, covariance_type)
    assert bool(ge.expansion_is_accurate(jnp.asarray(x), means32, prec_chol, covariance_type))
    got = ge.log_density(ge.features(jnp.asarray(x), covariance_type, ge.origin(means32)),
                         ge.log_density_weights(means32, prec_chol, covariance_type))
    want = _reference_log_density(x, means32, cov32, covariance_type)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)


def test_guarded_e_step_is_a_cond_only_for_unbatched_restarts():
    x, weights, means, cov = _standardised_mixture("full")
    model = emjax.GaussianMixture(K, covariance_type="full")
    params = emjax.GMMParams(jnp.asarray(weights, jnp.float32), *_as_float32(means, means)[1:],
                             jnp.asarray(cov, jnp.float32))
    trace = lambda m: str(jax.make_jaxpr(m.e_step)(params, jnp.asarray(x), jnp.ones(N)))
    assert "cond" not in trace(model)
    assert "cond" in trace(model.with_formulation(UNBATCHED))
    for n_init, unbatched in ((1, True), (4, False)):
        assert emjax.make_plan(model, x, n_init=n_init).formulation.unbatched == unbatched
    traced = jax.jit(lambda x: jnp.asarray(emjax.make_plan(model, x, n_init=1).formulation.unbatched))
    assert not traced(jnp.asarray(x))  # under a caller's trace a vmap may batch the restart


@pytest.mark.filterwarnings("ignore:Best performing initialization did not converge")
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_fit_with_expanded_e_steps_matches_sklearn(covariance_type):
    """A W2-like (full) / W3-like (diag) fit from given parameters: emjax's float32 fit with
    n_init=1 (guarded expanded E-steps) against scikit-learn's float64 EM from the same start."""
    n, d, k = 5000, 16 if covariance_type == "full" else 24, 4
    x, weights, means, cov = _standardised_mixture(covariance_type, seed=5, n=n, d=d, k=k)
    start_means = means + 0.3 * np.random.default_rng(6).normal(size=means.shape)
    start_cov = np.asarray(cov) * 1.5
    model = emjax.GaussianMixture(k, covariance_type=covariance_type, pseudo_count=0)
    start = emjax.GMMParams(*(jnp.asarray(a, jnp.float32)[None] for a in (weights, start_means, start_cov)))
    res = emjax.fit(model, x, jax.random.key(0), n_init=1, init_params=start, max_iter=30, tol=0.0,
                    throw=False)
    assert emjax.Status(int(res.status)) == emjax.Status.MAX_ITER
    # the guard held at the fitted parameters for all rows, so every chunk took the expanded form
    prec_chol = g.precision_cholesky(res.params.covariances, covariance_type)
    assert bool(ge.expansion_is_accurate(jnp.asarray(x), res.params.means, prec_chol, covariance_type))

    precisions = np.linalg.inv(start_cov) if covariance_type == "full" else 1 / start_cov
    sk = SkGaussianMixture(k, covariance_type=covariance_type, reg_covar=1e-6, max_iter=30, tol=0,
                           weights_init=weights, means_init=start_means, precisions_init=precisions)
    sk.fit(x.astype(np.float64))
    # same iterates: the mean log-likelihood agrees to float32 rounding of ~20 nats per row
    np.testing.assert_allclose(float(res.log_likelihood), sk.score(x.astype(np.float64)), atol=2e-5)
    np.testing.assert_allclose(np.asarray(res.params.means), sk.means_, atol=2e-3)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_float64_expanded_e_step_is_exact(x64, covariance_type):
    x, weights, means, cov = _standardised_mixture(covariance_type, seed=7)
    model = emjax.GaussianMixture(K, covariance_type=covariance_type)
    params = emjax.GMMParams(*(jnp.asarray(a, jnp.float64) for a in (weights, means, cov)))
    xj = jnp.asarray(x, jnp.float64)
    exact_stats, exact_ll = model.e_step(params, xj, jnp.ones(N))
    stats, loglik = jax.jit(model.with_formulation(UNBATCHED).e_step)(params, xj, jnp.ones(N))
    prec_chol = g.precision_cholesky(params.covariances, covariance_type)
    assert bool(ge.expansion_is_accurate(xj, params.means, prec_chol, covariance_type))
    lp = _reference_log_density(x, means, cov, covariance_type) + np.log(weights)[:, None]
    np.testing.assert_allclose(loglik, logsumexp(lp, axis=0).sum(), rtol=1e-12)
    for got, want in zip(stats, exact_stats):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_exact_diag_forms_all_components_at_once_match_per_component(covariance_type):
    """The accelerator formulation (all components at once) against NumPy, forced on CPU."""
    x, weights, means, cov = _tight_far_mixture(covariance_type, seed=2)
    cov32, means32 = _as_float32(cov, means)
    prec_chol = g.precision_cholesky(cov32, covariance_type)
    p = np.broadcast_to((1 / np.asarray(cov32, np.float64)).reshape(K, -1), (K, D))
    x64, m64 = x.astype(np.float64), np.asarray(means32, np.float64)
    want = ((x64[None] - m64[:, None]) ** 2 * p[:, None]).sum(-1)
    r = np.random.default_rng(0).uniform(size=(K, N))
    want_second = np.einsum("kn,knd->kd", r, (x64[None] - m64[:, None]) ** 2)
    for per_component in (True, False):
        got = g.diagonal_mahalanobis(jnp.asarray(x), means32, prec_chol, covariance_type, per_component)
        np.testing.assert_allclose(got, want, rtol=2e-6)
        second = g.sufficient_stats(jnp.asarray(x), jnp.asarray(r, jnp.float32), means32,
                                    covariance_type, emjax.Formulation(per_component=per_component))[2]
        np.testing.assert_allclose(second, want_second, rtol=1e-4)
    assert g.per_component_on_this_backend() == (jax.default_backend() == "cpu")
