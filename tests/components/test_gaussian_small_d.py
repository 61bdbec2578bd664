"""Full and tied covariances up to SMALL_D features (second moments summed entry by entry, sums
of squares as adds) against NumPy float64 references written from the definitions."""
import jax.numpy as jnp
import numpy as np
import pytest

from emjax.components import gaussian as g
from reference.gaussian_stats import problem, reference_stats


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
@pytest.mark.parametrize("d", [1, 2, g.SMALL_D, g.SMALL_D + 1])
def test_second_moments_match_definition_in_float64(x64, d, covariance_type):
    x, resp, ref = problem(d)
    got = g.sufficient_stats(jnp.asarray(x), jnp.asarray(resp), jnp.asarray(ref), covariance_type)
    for value, want in zip(got, reference_stats(x, resp, ref, covariance_type)):
        assert value.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(value), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_second_moments_of_a_tight_component_far_from_the_origin_in_float32(covariance_type):
    """Spread 1e-3 at offset 1e3: an expanded sum r x x^T - ... would leave float32 rounding of
    ~eps * 1e6 * n, far above the true moments (~1e-6 * n); differences keep them to ~1e-4."""
    x, resp, ref = problem(2, offset=1e3, spread=1e-3, seed=1)
    x32, resp32, ref32 = (a.astype(np.float32) for a in (x, resp, ref))
    _, _, second = g.sufficient_stats(jnp.asarray(x32), jnp.asarray(resp32), jnp.asarray(ref32),
                                      covariance_type)
    assert second.dtype == jnp.float32
    want = reference_stats(x32, resp32, ref32, covariance_type)[2]  # same float32 inputs, in float64
    np.testing.assert_allclose(np.asarray(second, np.float64), want, rtol=1e-3,
                               atol=1e-3 * np.abs(want).max())


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
@pytest.mark.parametrize("d", [1, 2, g.SMALL_D, g.SMALL_D + 1])
def test_log_density_matches_definition_in_float64(x64, d, covariance_type):
    x, _, means = problem(d, seed=2)
    a = np.random.default_rng(3).normal(size=(3, d, d))
    cov = a @ np.swapaxes(a, 1, 2) + d * np.eye(d)
    cov = cov if covariance_type == "full" else cov[0]
    prec_chol = g.precision_cholesky(jnp.asarray(cov), covariance_type)
    got = g.log_density(jnp.asarray(x), jnp.asarray(means), prec_chol, covariance_type)
    covs = np.broadcast_to(cov, (3, d, d))
    want = np.stack([
        -0.5 * (d * np.log(2 * np.pi) + np.linalg.slogdet(c)[1]
                + np.einsum("nd,de,ne->n", x - m, np.linalg.inv(c), x - m))
        for m, c in zip(means, covs)])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
