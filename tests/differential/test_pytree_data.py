"""Pytree data of a user model under ``jit``, ``vmap``, ``grad`` and ``jvp``: rows given as a pair
``(a, b)`` of arrays sharing the row axis (a model written here against the documented contract)
give the fit, and the derivatives, of the same model on the concatenated array
(:class:`.registry.ExponentialMixture`, the registry's user model, whose one step is checked
against NumPy in the rest of the harness); the gradient also matches central finite
differences of the converged objective.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax

from .grid import verify
from .registry import ExpParams, ExponentialMixture, Shape, exponential_data

pytestmark = pytest.mark.usefixtures("x64")
SHAPE = Shape(n=40, d=3, k=2, seed=6)
SPLIT = 2  # a: the first two features, b: the third
OPTIONS = dict(max_iter=500, tol=1e-12, throw=False)


@dataclasses.dataclass(frozen=True)
class PairExponentialMixture(ExponentialMixture):
    """:class:`ExponentialMixture` whose rows arrive as a pytree ``(a, b)``."""

    def log_prob(self, params, data):
        return super().log_prob(params, jnp.concatenate(data, axis=1))

    def posterior(self, params, data):
        return super().posterior(params, jnp.concatenate(data, axis=1))

    def e_step(self, params, data, weights):
        return super().e_step(params, jnp.concatenate(data, axis=1), weights)

    def init(self, key, data, weights):
        return super().init(key, jnp.concatenate(data, axis=1), weights)


def problem(seed_shift=0):
    x = exponential_data(SHAPE._replace(seed=SHAPE.seed + seed_shift))
    rng = np.random.default_rng(SHAPE.seed)
    start = ExpParams(np.full(SHAPE.k, 1 / SHAPE.k), 1 / x[rng.choice(SHAPE.n, SHAPE.k, replace=False)])
    return x, start


def pair(x):
    return x[:, :SPLIT], x[:, SPLIT:]


def objective_of_array(x, start):
    return emjax.em(ExponentialMixture(SHAPE.k), start, x, **OPTIONS).objective


def objective_of_pair(a, b, start):
    return emjax.em(PairExponentialMixture(SHAPE.k), start, (a, b), **OPTIONS).objective


def close(got, want, rtol=1e-9):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=rtol, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("transform", ["grad", *[pytest.param(t, marks=verify) for t in ("jit", "vmap", "jvp")]])
def test_pytree_rows_under_transformations(transform):
    x, start = problem()
    array_result = emjax.em(ExponentialMixture(SHAPE.k), start, x, **OPTIONS)
    assert emjax.Status(int(array_result.status)) == emjax.Status.CONVERGED
    if transform == "jit":
        run = jax.jit(lambda a, b: emjax.em(PairExponentialMixture(SHAPE.k), start, (a, b), **OPTIONS))
        got = run(*pair(x))
        assert int(got.status) == int(array_result.status)
        close(got.objective, array_result.objective)
        for g, w in zip(jax.tree_util.tree_leaves(got.params), jax.tree_util.tree_leaves(array_result.params)):
            close(g, w, rtol=1e-7)
    elif transform == "vmap":
        other, _ = problem(seed_shift=1)
        a, b = (np.stack(parts) for parts in zip(pair(x), pair(other)))
        got = jax.vmap(lambda a, b: objective_of_pair(a, b, start))(a, b)
        close(got, [objective_of_array(x, start), objective_of_array(other, start)])
    else:
        grad_a, grad_b = jax.grad(objective_of_pair, argnums=(0, 1))(*pair(x), start)
        want = jax.grad(objective_of_array)(x, start)
        close(np.concatenate([grad_a, grad_b], axis=1), want, rtol=1e-7)
        if transform == "grad":  # one entry of each leaf against central differences
            for i, j in ((3, 1), (17, SPLIT)):
                bump = np.zeros_like(x)
                bump[i, j] = h = 1e-5 * x[i, j]
                numeric = (float(objective_of_array(x + bump, start))
                           - float(objective_of_array(x - bump, start))) / (2 * h)
                close(want[i, j], numeric, rtol=1e-5)
        else:
            directions = pair(np.random.default_rng(1).normal(size=x.shape))
            _, tangent = jax.jvp(lambda a, b: objective_of_pair(a, b, start), pair(x), directions)
            close(tangent, np.sum(grad_a * directions[0]) + np.sum(grad_b * directions[1]), rtol=1e-7)
