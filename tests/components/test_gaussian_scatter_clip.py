"""Diagonal scatter about the means never goes negative through float32 rounding.

A feature that is constant within a component has zero scatter; the expanded form
second - 2 delta centred + N delta^2 computed in float32 can come out slightly below zero, which
made the covariance negative and the restart DEGENERATE (seen on the 8x8 digits with diag).
"""
import jax.numpy as jnp
import numpy as np

from emjax.components import gaussian as g


def test_constant_feature_scatter_is_not_negative():
    rng = np.random.default_rng(0)
    n = rng.uniform(50, 300, size=(50, 1)).astype(np.float32)
    value = rng.uniform(10, 50, size=(50, 3)).astype(np.float32)  # constant within each component
    counts, sums, second = jnp.asarray(n[:, 0]), jnp.asarray(n * value), jnp.asarray(n * value * value)
    means = sums / counts[:, None]
    scatter = np.asarray(g.scatter_about_means(counts, sums, second, jnp.zeros_like(means), means, "diag"))
    assert (scatter >= 0).all()
    np.testing.assert_allclose(scatter, 0, atol=1e-6 * float(jnp.max(second)))  # float32 rounding
