"""User-defined models: the contract with a closed-form M-step (mixture of linear regressions),
generalized EM (gem_ascent, gem_m_step), EnumeratedMixture, the mixture-of-experts example, and
vmap over datasets, hyperparameters and restarts at once. References are NumPy code written here."""
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.special import gammaln

import emjax

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from examples.mixture_of_experts import mixture_of_experts  # noqa: E402
from examples.mixture_of_regressions import MixtureOfRegressions, RegressionMixtureParams  # noqa: E402

KEY = jax.random.key(0)


def regression_data(seed=0, n=120, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = np.c_[rng.uniform(-2, 2, n), np.ones(n)]
    z = rng.integers(2, size=n)
    y = np.where(z == 0, 2 * x[:, 0] + 1, -x[:, 0] - 1) + 0.3 * rng.normal(size=n)
    return x.astype(dtype), y.astype(dtype)


def numpy_regression_em(x, y, weights, coefs, variances, ridge, n_iter, floor=1e-4, c=1e-2):
    """Reference EM for the regression mixture (NumPy, float64): returns the parameters and the
    per-iteration objective (mean log-likelihood + log prior / n)."""
    history = []
    for _ in range(n_iter):
        log_normal = -0.5 * (np.log(2 * np.pi * variances) + (y[:, None] - x @ coefs.T) ** 2 / variances)
        table = log_normal + np.log(weights)
        row = np.logaddexp.reduce(table, axis=1)
        resp = np.exp(table - row[:, None])
        counts = resp.sum(0)
        d = x.shape[1]
        coefs = np.stack([np.linalg.solve((x * r[:, None]).T @ x + ridge * np.eye(d), (x * r[:, None]).T @ y)
                          for r in resp.T])
        rss = np.array([np.sum(r * (y - x @ b) ** 2) + ridge * b @ b for r, b in zip(resp.T, coefs)])
        variances = (rss + floor) / (counts + d + c)
        weights = (counts + c) / (counts.sum() + len(counts) * c)
        log_normal = -0.5 * (np.log(2 * np.pi * variances) + (y[:, None] - x @ coefs.T) ** 2 / variances)
        loglik = np.logaddexp.reduce(log_normal + np.log(weights), axis=1).sum()
        prior = (c * np.log(weights).sum()
                 + np.sum(0.5 * d * np.log(ridge / variances) - 0.5 * ridge * (coefs ** 2).sum(1) / variances)
                 + np.sum(-0.5 * c * np.log(variances) - 0.5 * floor / variances))
        history.append((loglik + prior) / len(y))
    return coefs, variances, weights, np.array(history)


def test_regression_mixture_vmapped_over_datasets_ridges_and_restarts_matches_numpy_em(x64):
    """3 datasets x 3 ridge strengths x 2 restarts as one program (nested vmap); runs picked
    from the grid follow the NumPy EM reference from the same starting points."""
    data = [regression_data(seed, n=60) for seed in range(3)]
    xs, ys = np.stack([d[0] for d in data]), np.stack([d[1] for d in data])
    ridges = np.array([0.01, 1.0, 30.0])

    rng = np.random.default_rng(1)
    starts = RegressionMixtureParams(np.full((2, 2), 0.5), rng.normal(size=(2, 2, 2)),
                                     rng.uniform(0.5, 2.0, (2, 2)))  # (restarts, ...)

    def one(x, y, ridge):
        res = emjax.fit(MixtureOfRegressions(2, ridge), (x, y), KEY, n_init=2, tol=0.0, max_iter=30,
                        init_params=starts, throw=False)
        return res.restarts

    over_ridges = jax.vmap(one, in_axes=(None, None, 0))
    restarts = jax.jit(jax.vmap(over_ridges, in_axes=(0, 0, None)))(xs, ys, ridges)
    assert restarts.objective.shape == (3, 3, 2) and restarts.params.coefs.shape == (3, 3, 2, 2, 2)
    assert np.all(restarts.status == emjax.Status.MAX_ITER)
    for i, j in [(0, 0), (2, 1), (1, 2)]:
        for r in range(2):
            coefs, variances, weights, history = numpy_regression_em(
                *data[i], *(a[r] for a in starts), ridges[j], 30)
            np.testing.assert_allclose(restarts.history[i, j, r], history, rtol=1e-10)
            np.testing.assert_allclose(restarts.params.coefs[i, j, r], coefs, rtol=1e-8, atol=1e-10)
            np.testing.assert_allclose(restarts.params.variances[i, j, r], variances, rtol=1e-8)
            np.testing.assert_allclose(restarts.params.weights[i, j, r], weights, rtol=1e-8)
    # a stronger ridge shrinks the slopes of the best restart
    best = np.take_along_axis(np.abs(np.asarray(restarts.params.coefs)[..., 0]).sum(-1),
                              np.argmax(np.asarray(restarts.objective), -1)[..., None], -1)[..., 0]
    assert np.all(best[:, 2] < best[:, 0])


# ------------------------------------------------------------------ generalized EM
def test_gem_ascent_never_returns_a_lower_objective():
    objective = lambda mu: -(mu - 3.0) ** 2
    start = jnp.asarray(0.0)
    downhill = emjax.gem_ascent(objective, start, optax.sgd(-0.1), n_steps=5)  # descends
    assert float(downhill) == 0.0
    diverging = emjax.gem_ascent(objective, start, optax.sgd(1.5), n_steps=5)  # overshoots
    assert float(objective(diverging)) >= float(objective(start))
    converging = emjax.gem_ascent(objective, start, optax.sgd(0.3), n_steps=30)
    np.testing.assert_allclose(converging, 3.0, rtol=1e-5)


def test_gem_m_step_maximises_an_expected_log_joint_from_statistics():
    """Mean of a Gaussian from summed statistics: the maximiser is sum / count."""
    q = lambda mean, stats, old: stats[1] * mean - 0.5 * stats[0] * mean ** 2
    m_step = emjax.gem_m_step(q, optax.adam(0.1), n_steps=300)
    new = m_step((jnp.asarray(10.0), jnp.asarray(25.0)), jnp.asarray(0.0))
    np.testing.assert_allclose(new, 2.5, rtol=1e-3)


def poisson_log_joint(params, x, z):
    rate = jnp.exp(params["log_rates"][z])
    return jax.nn.log_softmax(params["logits"])[z] + x * jnp.log(rate) - rate - gammaln(x + 1)


def poisson_init(key, x, weights):
    return {"logits": jnp.zeros(2, x.dtype), "log_rates": jnp.log(jnp.array([1.0, 20.0], x.dtype))
            + 0.1 * jax.random.normal(key, (2,), x.dtype)}


POISSON = emjax.EnumeratedMixture(poisson_log_joint, poisson_init, n_states=2,
                                  optimizer=optax.adam(0.1), n_steps=20)


def numpy_poisson_em(x, weights, rates, n_iter=2000):
    """Closed-form EM for a Poisson mixture (NumPy): the optimum the GEM fit should reach."""
    log_fact = np.array([np.sum(np.log(np.arange(1, v + 1))) for v in x.astype(int)])
    for _ in range(n_iter):
        table = np.log(weights) + x[:, None] * np.log(rates) - rates - log_fact[:, None]
        resp = np.exp(table - np.logaddexp.reduce(table, axis=1)[:, None])
        weights, rates = resp.mean(0), resp.T @ x / resp.sum(0)
    table = np.log(weights) + x[:, None] * np.log(rates) - rates - log_fact[:, None]
    return np.logaddexp.reduce(table, axis=1), rates


def test_a_gem_step_that_would_lower_the_objective_is_rejected_not_reported_as_progress(x64):
    descending = emjax.EnumeratedMixture(poisson_log_joint, poisson_init, n_states=2,
                                         optimizer=optax.sgd(-0.05), n_steps=1)
    x = np.random.default_rng(1).poisson(4.0, 50).astype(np.float64)
    start = poisson_init(KEY, jnp.asarray(x), None)
    res = emjax.em(descending, start, x, max_iter=20, tol=1e-12, throw=False)
    assert int(res.status) == emjax.Status.CONVERGED and int(res.n_iter) == 1
    np.testing.assert_array_equal(res.params["log_rates"], start["log_rates"])
    np.testing.assert_allclose(res.objective, np.mean(POISSON.log_prob(start, x)), rtol=1e-12)


def test_enumerated_mixture_rejects_bad_configuration_and_data():
    with pytest.raises(ValueError, match="n_states must be a positive integer"):
        emjax.EnumeratedMixture(poisson_log_joint, poisson_init, n_states=0)
    with pytest.raises(ValueError, match="log_joint must be callable"):
        emjax.EnumeratedMixture(None, poisson_init, n_states=2)
    with pytest.raises(ValueError, match="data leaf 1 has 3 rows but data leaf 0 has 4"):
        emjax.fit(POISSON, (np.zeros((4, 1)), np.zeros(3)), KEY)
    with pytest.raises(ValueError, match="data contains 1 NaN"):
        emjax.fit(POISSON, np.array([1.0, np.nan, 2.0]), KEY)


def test_enumerated_mixture_is_brute_force_reaches_the_em_optimum_and_is_differentiable(x64):
    """log_prob against brute-force enumeration; a GEM fit (plain gradient steps) climbs
    monotonically to the closed-form EM optimum; its derivative through the fit matches central
    differences (the softmax logits are identified only up to a shift: the least-squares
    adjoint copes). The perturbed inputs share the fit's compiled program."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.poisson(2.0, 60), rng.poisson(10.0, 60)]).astype(np.float64)
    params = {"logits": jnp.array([0.3, -0.2]), "log_rates": jnp.log(jnp.array([1.5, 7.0]))}
    weights = np.exp([0.3, -0.2]) / np.exp([0.3, -0.2]).sum()
    brute, _ = numpy_poisson_em(x, weights, np.array([1.5, 7.0]), n_iter=0)
    np.testing.assert_allclose(POISSON.log_prob(params, x), brute, rtol=1e-12)

    sgd = emjax.EnumeratedMixture(poisson_log_joint, poisson_init, n_states=2,
                                  optimizer=optax.sgd(3e-3), n_steps=1)
    v, h = rng.normal(size=x.shape), 1e-5

    def loss(x):
        res = emjax.fit(sgd, x, KEY, max_iter=300, tol=0.0, throw=False)
        rates = jnp.sort(jnp.exp(res.params["log_rates"]))
        return jnp.sum(rates * jnp.array([1.0, 0.3])), (res, rates)

    (values, (res, rates)), grads = jax.jit(jax.vmap(jax.value_and_grad(loss, has_aux=True)))(
        np.stack([x, x + h * v, x - h * v]))
    assert np.all(res.restarts.status[0] == emjax.Status.MAX_ITER)
    assert np.all(np.diff(np.asarray(res.restarts.history[0]), axis=-1) >= -1e-14)  # up to rounding
    optimum, em_rates = numpy_poisson_em(x, np.array([0.5, 0.5]), np.array([1.0, 20.0]))
    np.testing.assert_allclose(res.log_likelihood[0], optimum.mean(), rtol=1e-12)
    np.testing.assert_allclose(rates[0], em_rates, rtol=1e-8)
    np.testing.assert_allclose(np.sum(grads[0] * v), (values[1] - values[2]) / (2 * h), rtol=1e-5)


# ------------------------------------------------------------------ mixture of experts (GEM)
def test_mixture_of_experts_with_a_neural_gate_finds_both_regimes():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (200, 1)).astype(np.float32)
    y = (np.where(x[:, 0] < 0, 2 * x[:, 0] + 1, -x[:, 0] + 1)
         + 0.2 * rng.normal(size=200)).astype(np.float32)
    res = emjax.fit(mixture_of_experts(n_steps=1), (x, y), KEY, max_iter=300, tol=1e-5,
                    throw=False)
    assert int(res.status) in (emjax.Status.CONVERGED, emjax.Status.MAX_ITER)
    history = np.asarray(res.history[:int(res.n_iter)], np.float64)
    assert np.all(np.diff(history) >= -256 * np.finfo(np.float32).eps * (1 + np.abs(history[:-1])))
    design = np.c_[x, np.ones(200)]
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    one_line = -0.5 * (np.log(2 * np.pi * np.mean(residual ** 2)) + 1)  # best single regression
    assert float(res.log_likelihood) > one_line + 0.5
    np.testing.assert_allclose(np.sort(res.params["slopes"][:, 0]), [-1.0, 2.0], atol=0.15)

