"""The fast Gaussian-HMM E-step's layouts and start against independent references: the
many-state (matrix-product) path of the scaled forward-backward by enumeration, step-major
log-densities by SciPy, step-major emission statistics by NumPy, the sampled start and the
single-restart fit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from emjax.inference import hmm_scaled
from emjax.components.emissions_gaussian import INIT_SAMPLE, GaussianEmission, GaussianEmissionParams
from reference.hmm import enumerate_paths, gaussian_log_emissions, tiny_hmm


@pytest.mark.parametrize("k", [hmm_scaled.SMALL_K + 2, 4])  # matrix products / explicit adds
def test_scaled_posterior_equals_enumeration_for_both_state_paths(x64, k):
    lengths, weights, t = np.array([4, 3, 1]), np.array([1.0, 0.5, 2.0]), 4
    initial, trans, _ = tiny_hmm(k, k, t)
    log_emit = np.stack([tiny_hmm(k + 1 + i, k, t)[2] for i in range(len(lengths))], axis=1)
    post = hmm_scaled.batch_posterior(*map(jnp.asarray, (initial, trans, log_emit, lengths, weights)))
    counts = np.zeros((k, k))
    for i, (length, w) in enumerate(zip(lengths, weights)):
        ll, marginals, pairwise, _ = enumerate_paths(initial, trans, log_emit[:, i], length)
        np.testing.assert_allclose(post.log_likelihood[i], ll, rtol=1e-12)
        np.testing.assert_allclose(post.marginals[:, i], marginals, atol=1e-12)
        counts += w * pairwise.sum(axis=0)
    np.testing.assert_allclose(post.transitions, counts, atol=1e-12)


def test_step_major_log_densities_match_scipy(x64):
    rng = np.random.default_rng(3)
    k, d = 5, 3
    means = rng.normal(size=(k, d))
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, 1, 2) + 0.3 * np.eye(d)
    x = rng.normal(scale=2.0, size=(11, d))
    params = GaussianEmissionParams(jnp.asarray(means), jnp.asarray(covs))
    got = GaussianEmission("full").log_density_steps(params, jnp.asarray(x))
    np.testing.assert_allclose(got, gaussian_log_emissions(x, means, covs), rtol=1e-12)


def numpy_stats(x, resp, ref, covariance_type):
    """Counts, sums and second moments about ``ref`` from the definitions (float64)."""
    counts = resp.sum(axis=0)
    sums = resp.T @ x
    diff = x[:, None, :] - ref[None]  # (n, k, d)
    second = np.einsum("nk,nkc,nke->kce", resp, diff, diff)
    if covariance_type == "tied":
        return counts, sums, second.sum(axis=0)
    if covariance_type in ("diag", "spherical"):
        return counts, sums, np.einsum("kcc->kc", second)
    return counts, sums, second


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_step_major_statistics_match_numpy(x64, covariance_type):
    rng = np.random.default_rng(5)
    t, s, k = 7, 3, 4
    for d in (3, 6):  # one variadic reduction (d <= SMALL_D) / the component-major statistics
        x = rng.normal(loc=50.0, size=(t * s, d))  # far from the origin: differences matter
        ref = 50.0 + rng.normal(size=(k, d))
        resp = rng.dirichlet(np.ones(k), size=(t, s)) * rng.uniform(size=(1, s, 1))
        resp[5:, 1] = 0.0  # padded steps
        params = GaussianEmissionParams(jnp.asarray(ref), None)
        got = GaussianEmission(covariance_type).stats_steps(params, jnp.asarray(x), jnp.asarray(resp))
        for a, b in zip(got, numpy_stats(x, resp.reshape(-1, k), ref, covariance_type)):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


def regimes(n_sequences, n_steps, seed):
    """Steps of three sticky regimes with 2-d Gaussian emissions (NumPy)."""
    rng = np.random.default_rng(seed)
    trans = np.array([[0.95, 0.03, 0.02], [0.04, 0.94, 0.02], [0.03, 0.03, 0.94]])
    means = np.array([[0.0, 0.0], [4.0, 1.0], [-3.0, 4.0]])
    states = np.zeros((n_sequences, n_steps), int)
    for step in range(1, n_steps):
        u = rng.uniform(size=(n_sequences, 1))
        states[:, step] = np.minimum((u > np.cumsum(trans[states[:, step - 1]], axis=1)).sum(axis=1), 2)
    return means[states] + rng.normal(scale=0.6, size=(n_sequences, n_steps, 2)), means


@pytest.mark.slow
def test_start_from_a_weighted_sample_ignores_padding_and_zero_weights_and_fits():
    x, true_means = regimes(3, 3000, seed=2)  # 9,000 steps > INIT_SAMPLE
    assert x.shape[0] * x.shape[1] > INIT_SAMPLE
    lengths = np.array([3000, 2000, 3000])
    x[1, 2000:] = 1e3  # padding
    x[2] = -1e3  # a sequence of weight 0
    weights = np.array([1.0, 2.0, 0.0])
    model = emjax.GaussianHMM(3)
    starts = emjax.init_restarts(model, (x, lengths), jax.random.key(0), n_init=4, weights=weights)
    means = np.asarray(starts.emission.means)
    assert np.all(np.abs(means) < 10), means  # only real, weighted steps were drawn
    assert len({tuple(np.round(m.ravel(), 5)) for m in means}) == 4  # restarts draw their own samples
    res = emjax.fit(model, (x, lengths), jax.random.key(0), weights=weights, max_iter=30, throw=False)
    got = np.asarray(res.params.emission.means)
    order = np.argmin(((got[None] - true_means[:, None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(got[order], true_means, atol=0.1)


@pytest.mark.slow
def test_one_restart_equals_the_first_of_several():
    x, _ = regimes(2, 150, seed=4)
    model = emjax.GaussianHMM(3)
    one = emjax.fit(model, x, jax.random.key(1), n_init=1, max_iter=10, tol=0.0, throw=False)
    two = emjax.fit(model, x, jax.random.key(1), n_init=2, max_iter=10, tol=0.0, throw=False)
    assert one.restarts.objective.shape == (1,)
    for a, b in zip(jax.tree_util.tree_leaves(one.restarts),
                    jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda v: v[:1], two.restarts))):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
