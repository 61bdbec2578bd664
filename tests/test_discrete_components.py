"""emjax.components.discrete against SciPy densities, NumPy loops and the MAP definition.

Densities are compared with ``scipy.stats`` log-pmfs row by row; statistics with explicit NumPy
loops over rows; updates with the maximiser of expected complete log-likelihood + log prior,
checked by the closed form written here and by perturbations inside the parameter domain.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import emjax.components.discrete as dc
from emjax.discrete_validation import as_binary_array, as_category_array, as_count_array

RNG = np.random.default_rng(0)
K = 3


def probs_on_simplex(*shape):
    p = RNG.uniform(0.1, 1.0, size=shape)
    return p / p.sum(axis=-1, keepdims=True)


def test_categorical_density_stats_and_update(x64):
    n_categories = (3, 2, 4)
    n, f, c = 40, 3, 4
    probs = np.zeros((K, f, c))
    for j, cj in enumerate(n_categories):
        probs[:, j, :cj] = probs_on_simplex(K, cj)
    x = np.stack([RNG.integers(cj, size=n) for cj in n_categories], axis=1)
    x[5, 1] = -1  # missing: contributes nothing
    x[7] = -1
    dens = np.asarray(dc.categorical_log_density(jnp.asarray(x), jnp.asarray(probs)))
    ref = np.array([[sum(np.log(probs[k, j, x[i, j]]) for j in range(f) if x[i, j] >= 0)
                     for i in range(n)] for k in range(K)])
    np.testing.assert_allclose(dens, ref, rtol=1e-12)
    assert dens[:, 7].tolist() == [0.0] * K

    resp = RNG.uniform(size=(K, n))
    counts = np.asarray(dc.categorical_stats(jnp.asarray(x), jnp.asarray(resp), c))
    ref_counts = np.zeros((K, f, c))
    for i in range(n):
        for j in range(f):
            if x[i, j] >= 0:
                ref_counts[:, j, x[i, j]] += resp[:, i]
    np.testing.assert_allclose(counts, ref_counts, rtol=1e-12)

    a = 0.5
    new = np.asarray(dc.categorical_update(jnp.asarray(counts), n_categories, a))
    for j, cj in enumerate(n_categories):
        expected = (ref_counts[:, j, :cj] + a) / (ref_counts[:, j, :cj] + a).sum(1, keepdims=True)
        np.testing.assert_allclose(new[:, j, :cj], expected, rtol=1e-12)
        assert np.all(new[:, j, cj:] == 0)
    prior = float(dc.categorical_log_prior(jnp.asarray(new), n_categories, a))
    np.testing.assert_allclose(prior, sum(a * np.log(new[:, j, :cj]).sum()
                                          for j, cj in enumerate(n_categories)), rtol=1e-12)


def test_bernoulli_density_stats_and_update(x64):
    n, d = 30, 5
    probs = RNG.uniform(0.05, 0.95, size=(K, d))
    x = RNG.integers(2, size=(n, d)).astype(float)
    dens = np.asarray(dc.bernoulli_log_density(jnp.asarray(x), jnp.asarray(probs)))
    ref = np.array([[stats.bernoulli.logpmf(x[i], probs[k]).sum() for i in range(n)] for k in range(K)])
    np.testing.assert_allclose(dens, ref, rtol=1e-12)

    resp = RNG.uniform(size=(K, n))
    counts, sums = map(np.asarray, dc.bernoulli_stats(jnp.asarray(x), jnp.asarray(resp)))
    np.testing.assert_allclose(counts, resp.sum(1), rtol=1e-12)
    np.testing.assert_allclose(sums, sum(np.outer(resp[:, i], x[i]) for i in range(n)), rtol=1e-12)
    a = 0.3
    new = np.asarray(dc.bernoulli_update(jnp.asarray(counts), jnp.asarray(sums), a))
    np.testing.assert_allclose(new, (sums + a) / (counts[:, None] + 2 * a), rtol=1e-12)
    np.testing.assert_allclose(float(dc.bernoulli_log_prior(jnp.asarray(new), a)),
                               a * (np.log(new) + np.log1p(-new)).sum(), rtol=1e-12)


def test_poisson_density_stats_and_update(x64):
    n, d = 30, 4
    rates = RNG.uniform(0.2, 6.0, size=(K, d))
    x = RNG.poisson(3.0, size=(n, d)).astype(float)
    dens = np.asarray(dc.poisson_log_density(jnp.asarray(x), jnp.asarray(rates)))
    ref = np.array([[stats.poisson.logpmf(x[i], rates[k]).sum() for i in range(n)] for k in range(K)])
    np.testing.assert_allclose(dens, ref, rtol=1e-12)

    resp = RNG.uniform(size=(K, n))
    counts, sums = map(np.asarray, dc.poisson_stats(jnp.asarray(x), jnp.asarray(resp)))
    a, b = 0.4, 0.2
    new = np.asarray(dc.poisson_update(jnp.asarray(counts), jnp.asarray(sums), a, b))
    np.testing.assert_allclose(new, (resp @ x + a) / (resp.sum(1)[:, None] + b), rtol=1e-12)
    np.testing.assert_allclose(float(dc.poisson_log_prior(jnp.asarray(new), a, b)),
                               (a * np.log(new) - b * new).sum(), rtol=1e-12)


def test_multinomial_density_stats_and_update(x64):
    n, v = 25, 6
    probs = probs_on_simplex(K, v)
    x = RNG.multinomial(12, [1 / v] * v, size=n).astype(float)
    x[3] = 0  # an empty row: log-probability 0 under every component
    dens = np.asarray(dc.multinomial_log_density(jnp.asarray(x), jnp.asarray(probs)))
    ref = np.array([[stats.multinomial.logpmf(x[i], x[i].sum(), probs[k]) for i in range(n)]
                    for k in range(K)])
    np.testing.assert_allclose(dens, ref, rtol=1e-12, atol=1e-12)
    assert dens[:, 3].tolist() == [0.0] * K

    resp = RNG.uniform(size=(K, n))
    sums = np.asarray(dc.multinomial_stats(jnp.asarray(x), jnp.asarray(resp)))
    np.testing.assert_allclose(sums, resp @ x, rtol=1e-12)
    new = np.asarray(dc.multinomial_update(jnp.asarray(sums), 0.0))
    np.testing.assert_allclose(new, sums / sums.sum(1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("family", ["categorical", "bernoulli", "poisson", "multinomial"])
def test_update_maximises_expected_loglik_plus_prior(family, x64):
    """No perturbation inside the domain beats the update (the MAP definition, not a formula)."""
    n, d, a, b = 50, 4, 0.7, 0.3
    resp = jnp.asarray(RNG.uniform(size=(K, n)))
    if family == "categorical":
        n_cat = (3, 2, 4, 2)
        x = jnp.asarray(np.stack([RNG.integers(c, size=n) for c in n_cat], axis=1))
        new = dc.categorical_update(dc.categorical_stats(x, resp, 4), n_cat, a)
        q = lambda p: jnp.sum(resp * dc.categorical_log_density(x, p)) + dc.categorical_log_prior(p, n_cat, a)
        perturb = lambda p, e: dc.dirichlet_map(p * jnp.exp(e), 0.0, dc.category_mask(n_cat))
    elif family == "bernoulli":
        x = jnp.asarray(RNG.integers(2, size=(n, d)).astype(float))
        new = dc.bernoulli_update(*dc.bernoulli_stats(x, resp), a)
        q = lambda p: jnp.sum(resp * dc.bernoulli_log_density(x, p)) + dc.bernoulli_log_prior(p, a)
        perturb = lambda p, e: jax.nn.sigmoid(jax.scipy.special.logit(p) + e)
    elif family == "poisson":
        x = jnp.asarray(RNG.poisson(2.0, size=(n, d)).astype(float))
        new = dc.poisson_update(*dc.poisson_stats(x, resp), a, b)
        q = lambda p: jnp.sum(resp * dc.poisson_log_density(x, p)) + dc.poisson_log_prior(p, a, b)
        perturb = lambda p, e: p * jnp.exp(e)
    else:
        x = jnp.asarray(RNG.poisson(2.0, size=(n, d)).astype(float))
        new = dc.multinomial_update(dc.multinomial_stats(x, resp), a)
        q = lambda p: jnp.sum(resp * dc.multinomial_log_density(x, p)) + dc.multinomial_log_prior(p, a)
        perturb = lambda p, e: dc.dirichlet_map(p * jnp.exp(e), 0.0)
    best = float(q(new))
    for scale in (1e-1, 1e-3):
        for _ in range(3):
            e = jnp.asarray(RNG.normal(scale=scale, size=new.shape))
            assert float(q(perturb(new, e))) < best


def test_zero_probabilities_and_zero_counts_give_no_nan(x64):
    x = jnp.asarray([[0.0, 2.0], [1.0, 0.0]])
    probs = jnp.asarray([[0.0, 1.0], [0.5, 0.5]])
    dens = np.asarray(dc.multinomial_log_density(x, probs))
    assert dens[0, 0] == pytest.approx(0.0) and dens[0, 1] == -np.inf
    assert np.isfinite(dens[1]).all()
    rates = jnp.asarray([[0.0, 1.0]])
    assert np.asarray(dc.poisson_log_density(x, rates))[0].tolist()[1] == -np.inf
    np.testing.assert_allclose(np.asarray(dc.poisson_log_density(x, rates))[0, 0], -1 - np.log(2.0))
    binary = jnp.asarray([[0.0, 1.0], [1.0, 1.0]])
    bern = np.asarray(dc.bernoulli_log_density(binary, jnp.asarray([[0.0, 1.0]])))
    assert bern[0].tolist() == [0.0, -np.inf]
    # no counts and no pseudo-counts: uniform, not 0/0
    np.testing.assert_allclose(np.asarray(dc.dirichlet_map(jnp.zeros((2, 3)), 0.0)), 1 / 3)
    np.testing.assert_allclose(np.asarray(dc.bernoulli_update(jnp.zeros(1), jnp.zeros((1, 2)), 0.0)), 0.5)
    assert float(dc.dirichlet_log_prior(jnp.asarray([0.0, 1.0]), 0.0)) == 0.0


def test_float32_in_float32_out():
    x = jnp.asarray([[1.0, 0.0]], jnp.float32)
    p = jnp.asarray([[0.3, 0.6]], jnp.float32)
    assert dc.bernoulli_log_density(x, p).dtype == jnp.float32
    assert dc.bernoulli_update(*dc.bernoulli_stats(x, jnp.ones((1, 1), jnp.float32)), 1e-3).dtype == jnp.float32
    assert dc.multinomial_update(jnp.ones((1, 2), jnp.float32), 1e-3).dtype == jnp.float32


def test_host_checks_name_the_offending_value():
    with pytest.raises(ValueError, match=r"non-negative integer counts; 1 value.*index \(1, 0\) \(-2.0\)"):
        as_count_array([[1, 2], [-2, 0]], "counts")
    with pytest.raises(ValueError, match=r"index \(0, 1\) \(0.5\)"):
        as_count_array([[1, 0.5]], "counts")
    with pytest.raises(ValueError, match=r"binary values.*index \(0, 1\) \(2.0\)"):
        as_binary_array([[0, 2]], "x")
    with pytest.raises(ValueError, match=r"index \(1, 1\) is 3, but feature 1 allows -1 \(missing\) or 0..2"):
        as_category_array([[0, 1], [1, 3]], (2, 3))
    with pytest.raises(ValueError, match=r"index \(0, 0\) is -1, but feature 0 allows 0..1"):
        as_category_array([[-1, 1]], (2, 3), allow_missing=False)
    with pytest.raises(ValueError, match="2 columns"):
        as_category_array([[0, 1, 1]], (2, 3))
    with pytest.raises(ValueError, match=r"integer category codes.*\(0.5\)"):
        as_category_array([[0.5, 1]], (2, 3))
    assert as_category_array(np.array([[1.0, 2.0]]), (2, 3)).dtype == jnp.int32
