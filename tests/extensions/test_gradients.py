"""Derivatives through EM fits (implicit differentiation at the fixed point), checked against
central finite differences at float64: GMM and a discrete (Poisson) mixture written here as a
user model, reverse and forward mode, inside jit and under vmap, failure cases."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import gammaln, logsumexp

import emjax
from emjax.engine.driver import run_em
from emjax.engine.implicit import _solve_fixed_point_system, with_implicit_gradients

KEY = jax.random.key(0)
STEP = 1e-5  # central differences: truncation ~STEP^2, rounding ~1e-16 / STEP


def central_difference(fn, x, direction, step=STEP):
    return (fn(x + step * direction) - fn(x - step * direction)) / (2 * step)


def two_blobs(seed=0, n=30):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) * 0.7 + [4.0, 1.0]])


GMM = emjax.GaussianMixture(2, covariance_type="diag", init_params="random_from_data")


def gmm_loss(x, weights=None):
    """A smooth, label-invariant function of the best restart's parameters and objective."""
    res = emjax.fit(GMM, x, KEY, n_init=2, weights=weights, tol=0.0, max_iter=200, throw=False)
    p = res.params
    order = jnp.argsort(p.means[:, 0])  # piecewise constant: components sorted by position
    return (jnp.sum(p.means[order] * jnp.array([[1.0, -2.0], [0.5, 3.0]]))
            + jnp.sum(p.covariances[order] ** 2 * jnp.array([1.0, 2.0])[:, None])
            + jnp.sum(p.weights[order] ** 3) + res.objective)


def test_gmm_gradients_inside_jit_under_vmap_match_central_differences(x64):
    """jit(vmap(value_and_grad)) over datasets, with respect to the data and the sample weights.

    The batch also holds the perturbed inputs of the central differences, so one compiled
    program gives both the derivatives and their finite-difference references."""
    rng = np.random.default_rng(1)
    xs = np.stack([two_blobs(seed) for seed in (0, 4)])
    ws = rng.uniform(0.5, 2.0, xs.shape[:2])
    vs, us = rng.normal(size=xs.shape), rng.normal(size=ws.shape)
    batch_x, batch_w = [xs[0], xs[1]], [ws[0], ws[1]]
    for i in range(2):
        batch_x += [xs[i] + STEP * vs[i], xs[i] - STEP * vs[i], xs[i], xs[i]]
        batch_w += [ws[i], ws[i], ws[i] + STEP * us[i], ws[i] - STEP * us[i]]
    values, (grad_x, grad_w) = jax.jit(jax.vmap(jax.value_and_grad(gmm_loss, argnums=(0, 1))))(
        np.stack(batch_x), np.stack(batch_w))
    assert np.all(np.isfinite(grad_x[:2])) and np.all(np.isfinite(grad_w[:2]))
    for i in range(2):
        plus_x, minus_x, plus_w, minus_w = values[2 + 4 * i: 6 + 4 * i]
        np.testing.assert_allclose(np.sum(grad_x[i] * vs[i]), (plus_x - minus_x) / (2 * STEP), rtol=1e-5)
        np.testing.assert_allclose(np.sum(grad_w[i] * us[i]), (plus_w - minus_w) / (2 * STEP), rtol=1e-5)


# ------------------------------------------------------------------ a discrete user model
@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PoissonMixture(emjax.Model):
    """Poisson mixture with a Gamma prior on the rates whose strength ``s`` is a pytree leaf:
    log p(rate) = s m log(rate) - s rate, so rate_k = (S_k + s m) / (N_k + s)."""

    n_components: int = dataclasses.field(metadata=dict(static=True))
    strength: float = 1.0
    prior_mean: float = dataclasses.field(default=3.0, metadata=dict(static=True))

    def _table(self, params, x):
        weights, rates = params
        return jnp.log(weights) + x[:, None] * jnp.log(rates) - rates - gammaln(x[:, None] + 1)

    def log_prob(self, params, x):
        return logsumexp(self._table(params, x), axis=1)

    def posterior(self, params, x):
        return jax.nn.softmax(self._table(params, x), axis=1)

    def e_step(self, params, x, weights):
        resp = self.posterior(params, x) * weights[:, None]
        return (resp.sum(0), resp.T @ x), jnp.sum(weights * self.log_prob(params, x))

    def m_step(self, stats, params):
        counts, sums = stats
        rates = (sums + self.strength * self.prior_mean) / (counts + self.strength)
        return counts / counts.sum(), rates

    def log_prior(self, params):
        rates = params[1]
        return jnp.sum(self.strength * self.prior_mean * jnp.log(rates) - self.strength * rates)

    def init(self, key, x, weights):
        resp = jax.random.dirichlet(key, jnp.ones(self.n_components, x.dtype), (x.shape[0],))
        return self.m_step(((resp * weights[:, None]).sum(0), (resp * weights[:, None]).T @ x), None)


def poisson_data(seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.poisson(2.0, 40), rng.poisson(12.0, 40)]).astype(np.float64)


def poisson_loss(x, weights, strength):
    res = emjax.fit(PoissonMixture(2, strength), x, KEY, n_init=2, weights=weights, tol=0.0,
                    max_iter=300, throw=False)
    weights_, rates = res.params
    order = jnp.argsort(rates)
    return jnp.sum(rates[order] * jnp.array([1.0, 0.3])) + weights_[order][0] + res.objective


@pytest.mark.slow
def test_discrete_user_model_reverse_and_forward_mode_match_central_differences(x64):
    """Gradients w.r.t. data, weights and the prior strength (a pytree leaf of the model) and a
    forward-mode directional derivative; the perturbed inputs of the central differences are
    batched into the same compiled program."""
    x, w, s = poisson_data(), np.linspace(0.5, 1.5, 80), 0.7
    rng = np.random.default_rng(7)
    v, u = rng.normal(size=x.shape), rng.normal(size=w.shape)
    h = STEP
    batch = ([x, x + h * v, x - h * v, x, x, x, x], [w, w, w, w + h * u, w - h * u, w, w],
             [s, s, s, s, s, s + h, s - h])

    @jax.jit
    @jax.vmap
    def derivatives(x, w, s):
        value, grads = jax.value_and_grad(poisson_loss, argnums=(0, 1, 2))(x, w, s)
        return value, grads, jax.jvp(lambda z: poisson_loss(z, w, s), (x,), (v,))[1]

    values, grads, tangents = derivatives(*(np.stack(b) for b in batch))
    difference = lambda i: (values[i] - values[i + 1]) / (2 * h)
    np.testing.assert_allclose(np.sum(grads[0][0] * v), difference(1), rtol=1e-5)
    np.testing.assert_allclose(tangents[0], difference(1), rtol=1e-5)
    np.testing.assert_allclose(np.sum(grads[1][0] * u), difference(3), rtol=1e-5)
    np.testing.assert_allclose(grads[2][0], difference(5), rtol=1e-5)


def test_iterative_adjoint_matches_central_differences(x64):
    """fit uses the dense solve for so few parameters; the iterative one is called directly."""
    x, w = poisson_data(1), np.ones(80)
    model = PoissonMixture(2, 0.5)
    start = (jnp.array([0.5, 0.5]), jnp.array([1.0, 20.0]))

    @jax.jit
    def rates(strength):
        res = with_implicit_gradients(run_em, PoissonMixture(2, strength), start, x, w,
                                      max_iter=300, tol=0.0, chunk_size=80, adjoint="iterative")
        return res.params[1]

    jac = jax.jacrev(rates)(model.strength)
    np.testing.assert_allclose(jac, central_difference(rates, model.strength, 1.0), rtol=1e-5)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BrokenPoissonMixture(PoissonMixture):
    """An M-step that returns NaN rates: every run ends NONFINITE after one iteration."""

    def m_step(self, stats, params):
        weights, rates = super().m_step(stats, params)
        return weights, rates * jnp.nan


def test_failed_run_has_zero_not_nan_derivatives(x64):
    start = (jnp.array([0.5, 0.5]), jnp.array([1.0, 20.0]))
    x = poisson_data()
    v = np.random.default_rng(8).normal(size=x.shape)

    def loss(x):
        res = emjax.em(BrokenPoissonMixture(2), start, x, max_iter=10, throw=False)
        return jnp.sum(res.params[1]) + res.objective, (res.status, res.objective)

    batch = np.stack([x, x + STEP * v, x - STEP * v])
    grads, (statuses, objectives) = jax.jit(jax.vmap(jax.grad(loss, has_aux=True)))(batch)
    assert np.all(statuses == emjax.Status.NONFINITE)
    assert np.all(np.isfinite(grads[0]))
    # the start's parameters carry no derivative; the objective of the start still does
    np.testing.assert_allclose(np.sum(grads[0] * v), (objectives[1] - objectives[2]) / (2 * STEP),
                               rtol=1e-5)


@pytest.mark.parametrize("adjoint", ["dense", "iterative"])
def test_adjoint_solve_is_exact_when_contractive_and_zero_when_singular(x64, adjoint):
    b = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(3.0)}
    half = _solve_fixed_point_system(lambda v: jax.tree_util.tree_map(lambda t: 0.5 * t, v), b, adjoint)
    for got, want in zip(jax.tree_util.tree_leaves(half), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(got, 2 * np.asarray(want), rtol=1e-10)
    singular = _solve_fixed_point_system(lambda v: v, b, adjoint)  # I - J = 0
    for got in jax.tree_util.tree_leaves(singular):
        np.testing.assert_array_equal(got, 0.0)


@pytest.mark.slow
def test_hmm_gradients_match_central_differences(x64):
    """Reverse mode through a Gaussian HMM fit (Baum-Welch fixed point) w.r.t. the observations."""
    rng = np.random.default_rng(3)
    regime = np.r_[np.zeros(12), np.ones(12)]
    x = rng.normal(size=(2, 24, 1)) + 3.0 * regime[None, :, None]
    lengths = jnp.array([24, 20])  # the second sequence is padded: its tail must get no gradient
    model = emjax.GaussianHMM(2, covariance_type="diag")

    def loss(obs):
        res = emjax.fit(model, emjax.Sequences(obs, lengths), KEY, n_init=2, max_iter=1000,
                        tol=1e-13, throw=False)
        p = res.params
        order = jnp.argsort(p.emission.means[:, 0])
        return (jnp.sum(p.emission.means[order, 0] * jnp.array([1.0, -2.0]))
                + jnp.sum(p.transitions[order][:, order] * jnp.array([[0.3, 1.0], [2.0, -1.0]]))
                + res.objective)

    grad = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(x)))
    direction = np.random.default_rng(4).normal(size=x.shape)
    direction[1, 20:] = 0
    fd = central_difference(lambda v: float(loss(jnp.asarray(v))), x, direction)
    np.testing.assert_allclose(np.sum(grad * direction), fd, rtol=1e-5)
    np.testing.assert_array_equal(grad[1, 20:], 0)
