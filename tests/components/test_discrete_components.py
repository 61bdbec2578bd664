"""emjax.components.discrete against SciPy densities, NumPy loops and the MAP definition.

Densities are compared with ``scipy.stats`` log-pmfs row by row; statistics with explicit NumPy
loops over rows; updates with the maximiser of expected complete log-likelihood + log prior,
checked by the closed form written here and by perturbations inside the parameter domain.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import emjax.components.discrete as dc
from emjax.core.discrete_validation import as_binary_array, as_category_array, as_count_array

RNG = np.random.default_rng(0)
K = 3


def probs_on_simplex(*shape):
    p = RNG.uniform(0.1, 1.0, size=shape)
    return p / p.sum(axis=-1, keepdims=True)


@functools.partial(jax.jit, static_argnames=("family", "n_categories"))
def pieces(family, x, params, resp, a, b=0.0, n_categories=None):
    """``(log density, statistics, updated params, their log prior)`` in one compiled call (far
    cheaper than op-by-op dispatch)."""
    if family == "categorical":
        stats = dc.categorical_stats(x, resp, max(n_categories))
        new = dc.categorical_update(stats, n_categories, a)
        return (dc.categorical_log_density(x, params), stats, new,
                dc.categorical_log_prior(new, n_categories, a))
    if family == "bernoulli":
        stats = dc.bernoulli_stats(x, resp)
        new = dc.bernoulli_update(*stats, a)
        return dc.bernoulli_log_density(x, params), stats, new, dc.bernoulli_log_prior(new, a)
    if family == "poisson":
        stats = dc.poisson_stats(x, resp)
        new = dc.poisson_update(*stats, a, b)
        return dc.poisson_log_density(x, params), stats, new, dc.poisson_log_prior(new, a, b)
    stats = dc.multinomial_stats(x, resp)
    new = dc.multinomial_update(stats, a)
    return dc.multinomial_log_density(x, params), stats, new, dc.multinomial_log_prior(new, a)


def run(family, x, params, resp, a, b=0.0, n_categories=None):
    out = pieces(family, jnp.asarray(x), jnp.asarray(params), jnp.asarray(resp), a, b, n_categories)
    return jax.tree_util.tree_map(np.asarray, out)


def test_categorical_density_stats_and_update(x64):
    n_categories = (3, 2, 4)
    n, f, c = 40, 3, 4
    probs = np.zeros((K, f, c))
    for j, cj in enumerate(n_categories):
        probs[:, j, :cj] = probs_on_simplex(K, cj)
    x = np.stack([RNG.integers(cj, size=n) for cj in n_categories], axis=1)
    x[5, 1] = -1  # missing: contributes nothing
    x[7] = -1
    resp = RNG.uniform(size=(K, n))
    a = 0.5
    dens, counts, new, prior = run("categorical", x, probs, resp, a, n_categories=n_categories)
    ref = np.array([[sum(np.log(probs[k, j, x[i, j]]) for j in range(f) if x[i, j] >= 0)
                     for i in range(n)] for k in range(K)])
    np.testing.assert_allclose(dens, ref, rtol=1e-12)
    assert dens[:, 7].tolist() == [0.0] * K

    ref_counts = np.zeros((K, f, c))
    for i in range(n):
        for j in range(f):
            if x[i, j] >= 0:
                ref_counts[:, j, x[i, j]] += resp[:, i]
    np.testing.assert_allclose(counts, ref_counts, rtol=1e-12)

    for j, cj in enumerate(n_categories):
        expected = (ref_counts[:, j, :cj] + a) / (ref_counts[:, j, :cj] + a).sum(1, keepdims=True)
        np.testing.assert_allclose(new[:, j, :cj], expected, rtol=1e-12)
        assert np.all(new[:, j, cj:] == 0)
    np.testing.assert_allclose(prior, sum(a * np.log(new[:, j, :cj]).sum()
                                          for j, cj in enumerate(n_categories)), rtol=1e-12)


def test_bernoulli_density_stats_and_update(x64):
    n, d, a = 30, 5, 0.3
    probs = RNG.uniform(0.05, 0.95, size=(K, d))
    x = RNG.integers(2, size=(n, d)).astype(float)
    resp = RNG.uniform(size=(K, n))
    dens, (counts, sums), new, prior = run("bernoulli", x, probs, resp, a)
    ref = np.array([[stats.bernoulli.logpmf(x[i], probs[k]).sum() for i in range(n)] for k in range(K)])
    np.testing.assert_allclose(dens, ref, rtol=1e-12)
    np.testing.assert_allclose(counts, resp.sum(1), rtol=1e-12)
    np.testing.assert_allclose(sums, sum(np.outer(resp[:, i], x[i]) for i in range(n)), rtol=1e-12)
    np.testing.assert_allclose(new, (sums + a) / (counts[:, None] + 2 * a), rtol=1e-12)
    np.testing.assert_allclose(prior, a * (np.log(new) + np.log1p(-new)).sum(), rtol=1e-12)


def test_poisson_density_stats_and_update(x64):
    n, d, a, b = 30, 4, 0.4, 0.2
    rates = RNG.uniform(0.2, 6.0, size=(K, d))
    x = RNG.poisson(3.0, size=(n, d)).astype(float)
    resp = RNG.uniform(size=(K, n))
    dens, _, new, prior = run("poisson", x, rates, resp, a, b)
    ref = np.array([[stats.poisson.logpmf(x[i], rates[k]).sum() for i in range(n)] for k in range(K)])
    np.testing.assert_allclose(dens, ref, rtol=1e-12)
    np.testing.assert_allclose(new, (resp @ x + a) / (resp.sum(1)[:, None] + b), rtol=1e-12)
    np.testing.assert_allclose(prior, (a * np.log(new) - b * new).sum(), rtol=1e-12)


def test_multinomial_density_stats_and_update(x64):
    n, v = 25, 6
    probs = probs_on_simplex(K, v)
    x = RNG.multinomial(12, [1 / v] * v, size=n).astype(float)
    x[3] = 0  # an empty row: log-probability 0 under every component
    resp = RNG.uniform(size=(K, n))
    dens, sums, new, _ = run("multinomial", x, probs, resp, 0.0)
    ref = np.array([[stats.multinomial.logpmf(x[i], x[i].sum(), probs[k]) for i in range(n)]
                    for k in range(K)])
    np.testing.assert_allclose(dens, ref, rtol=1e-12, atol=1e-12)
    assert dens[:, 3].tolist() == [0.0] * K
    np.testing.assert_allclose(sums, resp @ x, rtol=1e-12)
    np.testing.assert_allclose(new, sums / sums.sum(1, keepdims=True), rtol=1e-12)


@functools.partial(jax.jit, static_argnames=("family", "n_categories"))
def expected_objective(family, x, resp, params, a, b, n_categories):
    """Expected complete log-likelihood + log prior, sum_n,k r_kn log p(x_n | k) + log prior."""
    if family == "categorical":
        return (jnp.sum(resp * dc.categorical_log_density(x, params))
                + dc.categorical_log_prior(params, n_categories, a))
    if family == "bernoulli":
        return jnp.sum(resp * dc.bernoulli_log_density(x, params)) + dc.bernoulli_log_prior(params, a)
    if family == "poisson":
        return jnp.sum(resp * dc.poisson_log_density(x, params)) + dc.poisson_log_prior(params, a, b)
    return jnp.sum(resp * dc.multinomial_log_density(x, params)) + dc.multinomial_log_prior(params, a)


@pytest.mark.parametrize("family", ["categorical", "bernoulli", "poisson", "multinomial"])
def test_update_maximises_expected_loglik_plus_prior(family, x64):
    """No perturbation inside the domain beats the update (the MAP definition, not a formula)."""
    n, d, a, b = 50, 4, 0.7, 0.3
    resp = RNG.uniform(size=(K, n))
    n_cat = (3, 2, 4, 2) if family == "categorical" else None
    if family == "categorical":
        x = np.stack([RNG.integers(c, size=n) for c in n_cat], axis=1)
    elif family == "bernoulli":
        x = RNG.integers(2, size=(n, d)).astype(float)
    else:
        x = RNG.poisson(2.0, size=(n, d)).astype(float)
    shape = (K, len(n_cat), max(n_cat)) if n_cat else (K, d)
    new = run(family, x, np.full(shape, 0.5), resp, a, b, n_cat)[2]
    candidates = []
    for scale in (1e-1, 1e-3):
        for _ in range(3):
            e = RNG.normal(scale=scale, size=new.shape)
            if family == "bernoulli":  # stay inside (0, 1)
                candidates.append(1 / (1 + np.exp(-(np.log(new / (1 - new)) + e))))
            elif family == "poisson":  # stay positive
                candidates.append(new * np.exp(e))
            else:  # stay on the simplex (and off the padding)
                moved = new * np.exp(e)
                candidates.append(moved / moved.sum(-1, keepdims=True))
    value = lambda p: float(expected_objective(family, jnp.asarray(x), jnp.asarray(resp),
                                               jnp.asarray(p), a, b, n_cat))
    best = value(new)
    assert all(value(p) < best for p in candidates)


def test_zero_probabilities_and_zero_counts_give_no_nan(x64):
    x = np.array([[0.0, 2.0], [1.0, 0.0]])
    no_resp = np.zeros((2, 2))
    dens, _, new, prior = run("multinomial", x, [[0.0, 1.0], [0.5, 0.5]], no_resp, 0.0)
    assert dens[0, 0] == pytest.approx(0.0) and dens[0, 1] == -np.inf
    assert np.isfinite(dens[1]).all()
    np.testing.assert_allclose(new, 0.5)  # no counts and no pseudo-counts: uniform, not 0/0
    assert prior == 0.0  # 0 log 0 = 0
    dens = run("poisson", x, [[0.0, 1.0], [0.0, 1.0]], no_resp, 0.1, 0.1)[0]
    assert dens[0, 1] == -np.inf
    np.testing.assert_allclose(dens[0, 0], -1 - np.log(2.0))
    binary = np.array([[0.0, 1.0], [1.0, 1.0]])
    dens, _, new, _ = run("bernoulli", binary, [[0.0, 1.0], [0.0, 1.0]], no_resp, 0.0)
    assert dens[0].tolist() == [0.0, -np.inf]
    np.testing.assert_allclose(new, 0.5)


def test_float32_in_float32_out():
    dens, stats_, new, prior = pieces("bernoulli", jnp.asarray([[1.0, 0.0]], jnp.float32),
                                      jnp.asarray([[0.3, 0.6]], jnp.float32),
                                      jnp.ones((1, 1), jnp.float32), 1e-3)
    assert {a.dtype for a in (dens, *stats_, new, prior)} == {jnp.dtype(jnp.float32)}


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
