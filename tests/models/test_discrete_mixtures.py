"""Bernoulli, categorical, multinomial and Poisson mixtures against a NumPy/SciPy reference.

The reference EM step is written here from the model's definition: densities from
``scipy.stats``, responsibilities by explicit normalisation, and the MAP updates of a symmetric
Dirichlet(1 + a) on the weights and Dirichlet(1 + a) / Beta(1 + a, 1 + a) / Gamma(1 + a, a)
priors on the components; the objective is (sum_n w_n log p(x_n) + log prior) / sum_n w_n.
"""
import itertools

import jax
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import emjax

A = 0.05  # pseudo-count of the reference checks (large enough to matter)
RNG = np.random.default_rng(1)
N_CATEGORIES = (3, 2, 4)


def family_log_density(family, x, emission):
    """``(n, k)`` log p(x_i | component k) from SciPy."""
    k = emission.shape[0]
    if family == "bernoulli":
        f = lambda i, c: stats.bernoulli.logpmf(x[i], emission[c]).sum()
    elif family == "poisson":
        f = lambda i, c: stats.poisson.logpmf(x[i], emission[c]).sum()
    elif family == "multinomial":
        f = lambda i, c: stats.multinomial.logpmf(x[i], x[i].sum(), emission[c])
    else:
        f = lambda i, c: sum(np.log(emission[c, j, x[i, j]]) for j in range(x.shape[1]) if x[i, j] >= 0)
    return np.array([[f(i, c) for c in range(k)] for i in range(len(x))])


def family_log_prior(family, weights, emission, a):
    prior = a * np.log(weights).sum()
    if family == "bernoulli":
        return prior + a * (np.log(emission) + np.log1p(-emission)).sum()
    if family == "poisson":
        return prior + (a * np.log(emission) - a * emission).sum()
    return prior + a * np.log(emission[emission > 0]).sum()  # padding entries are exactly 0


def reference_step(family, x, w, weights, emission, a):
    """One MAP-EM step: (new weights, new emission, objective at the new parameters)."""
    lp = family_log_density(family, x, emission) + np.log(weights)
    r = np.exp(lp - logsumexp(lp, axis=1, keepdims=True)) * w[:, None]
    n_k = r.sum(0)
    new_w = (n_k + a) / (n_k.sum() + len(n_k) * a)
    if family == "bernoulli":
        new_e = (r.T @ x + a) / (n_k[:, None] + 2 * a)
    elif family == "poisson":
        new_e = (r.T @ x + a) / (n_k[:, None] + a)
    elif family == "multinomial":
        s = r.T @ x + a
        new_e = s / s.sum(1, keepdims=True)
    else:
        new_e = np.zeros_like(emission)
        for j, c in enumerate(N_CATEGORIES):
            counts = np.stack([r[x[:, j] == v].sum(0) for v in range(c)], axis=1) + a
            new_e[:, j, :c] = counts / counts.sum(1, keepdims=True)
    lp_new = family_log_density(family, x, new_e) + np.log(new_w)
    objective = (w @ logsumexp(lp_new, axis=1) + family_log_prior(family, new_w, new_e, a)) / w.sum()
    return new_w, new_e, objective


def model_for(family, k, a=emjax.components.PSEUDO_COUNT):
    return {"bernoulli": lambda: emjax.BernoulliMixture(k, a), "poisson": lambda: emjax.PoissonMixture(k, a),
            "multinomial": lambda: emjax.MultinomialMixture(k, a),
            "categorical": lambda: emjax.CategoricalMixture(k, N_CATEGORIES, a)}[family]()


def generate(family, n, rng):
    """``(x, labels, weights, emission)``: data from well separated components."""
    weights = np.array([0.5, 0.3, 0.2])
    labels = rng.choice(3, size=n, p=weights)
    if family == "bernoulli":
        emission = np.array([[0.9, 0.9, 0.1, 0.1, 0.8, 0.2], [0.1, 0.9, 0.9, 0.1, 0.2, 0.8],
                             [0.1, 0.1, 0.2, 0.9, 0.9, 0.9]])
        x = (rng.uniform(size=(n, 6)) < emission[labels]).astype(float)
    elif family == "poisson":
        emission = np.array([[1.0, 8.0, 3.0], [9.0, 1.0, 0.5], [4.0, 4.0, 12.0]])
        x = rng.poisson(emission[labels]).astype(float)
    elif family == "multinomial":
        emission = np.array([[0.5, 0.3, 0.1, 0.05, 0.05], [0.05, 0.05, 0.1, 0.3, 0.5],
                             [0.1, 0.1, 0.6, 0.1, 0.1]])
        x = np.stack([rng.multinomial(30, emission[c]) for c in labels]).astype(float)
    else:
        emission = np.zeros((3, 3, 4))
        emission[:, 0, :3] = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]
        emission[:, 1, :2] = [[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]]
        emission[:, 2, :4] = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7], [0.1, 0.7, 0.1, 0.1]]
        x = np.stack([[rng.choice(c, p=emission[z, j, :c]) for j, c in enumerate(N_CATEGORIES)]
                      for z in labels])
    return x, labels, weights, emission


FAMILIES = ["bernoulli", "categorical", "multinomial", "poisson"]


def random_emission(family, k, d, rng):
    """A random starting point inside the parameter domain."""
    if family == "bernoulli":
        return rng.uniform(0.2, 0.8, size=(k, d))
    if family == "poisson":
        return rng.uniform(1.0, 10.0, size=(k, d))
    if family == "multinomial":
        return rng.dirichlet(np.ones(d), k)
    emission = np.zeros((k, len(N_CATEGORIES), max(N_CATEGORIES)))
    for j, c in enumerate(N_CATEGORIES):
        emission[:, j, :c] = rng.dirichlet(np.ones(c), k)
    return emission


@pytest.mark.parametrize("family", FAMILIES)
def test_one_em_step_matches_numpy_reference(family, x64):
    x, _, _, _ = generate(family, 40, np.random.default_rng(2))
    if family == "categorical":
        x[3, 1] = -1  # a missing value
    if family == "multinomial":
        x[5] = 0  # an empty row
    w = RNG.uniform(0.5, 2.0, size=len(x))
    w[7] = 0.0
    k = 3
    weights = RNG.dirichlet(np.ones(k))
    model = model_for(family, k, A)
    emission = random_emission(family, k, x.shape[1], RNG)
    res = emjax.em(model, model.params_type(weights, emission), x, weights=w, max_iter=1, tol=0.0, throw=False)
    ref_w, ref_e, ref_obj = reference_step(family, x, w, weights, emission, A)
    np.testing.assert_allclose(np.asarray(res.params.weights), ref_w, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(res.params[1]), ref_e, rtol=1e-10)
    np.testing.assert_allclose(float(res.objective), ref_obj, rtol=1e-10)
    assert res.params[1].dtype == np.float64


def best_permutation_error(fitted, truth):
    """Largest absolute parameter error over the best matching of components."""
    return min(np.abs(fitted[list(p)] - truth).max() for p in itertools.permutations(range(len(truth))))


@pytest.mark.parametrize("family", FAMILIES)
def test_recovers_generating_parameters_monotonically(family):
    x, _, weights, emission = generate(family, 1500, np.random.default_rng(4))
    res = emjax.fit(model_for(family, 3), x, jax.random.key(0), n_init=4, max_iter=300, tol=1e-6)
    assert best_permutation_error(np.asarray(res.params[1]), emission) < {"poisson": 0.6, "categorical": 0.1}.get(family, 0.07)
    assert np.abs(np.sort(np.asarray(res.params.weights)) - np.sort(weights)).max() < 0.05
    hist = np.asarray(res.restarts.history)
    steps = np.diff(hist, axis=1)
    finite = np.isfinite(steps)
    assert (steps[finite] >= -1e-5 * np.abs(hist[:, 1:][finite])).all(), "objective fell"
    assert set(np.asarray(res.restarts.status).tolist()) <= {emjax.Status.CONVERGED, emjax.Status.MAX_ITER}


@pytest.mark.parametrize("model, data, match", [
    (emjax.PoissonMixture(2), [[1, 2], [3, -1]], r"non-negative integer counts.*index \(1, 1\) \(-1.0\)"),
    (emjax.MultinomialMixture(2), [[1, 2.5], [3, 1]], r"non-negative integer counts.*index \(0, 1\) \(2.5\)"),
    (emjax.BernoulliMixture(2), [[1, 0], [0, 3]], r"binary values.*index \(1, 1\) \(3.0\)"),
    (emjax.CategoricalMixture(2, (2, 3)), [[1, 0], [0, 3]], r"index \(1, 1\) is 3.*feature 1 allows -1 \(missing\) or 0..2"),
    (emjax.CategoricalMixture(2, (2, 3)), [[1, 0], [-2, 1]], r"index \(1, 0\) is -2"),
    (emjax.BernoulliMixture(3), [[1, 0], [0, 1]], r"n_samples=2 .* must be >= n_components=3"),
    (emjax.PoissonMixture(2), [[1, np.nan], [0, 1]], r"NaN value\(s\); the first at index \(0, 1\)"),
])
def test_bad_data_names_the_offending_value(model, data, match):
    with pytest.raises(ValueError, match=match):
        emjax.fit(model, np.asarray(data), jax.random.key(0))


@pytest.mark.parametrize("build, match", [
    (lambda: emjax.BernoulliMixture(0), "n_components must be a positive integer; got 0"),
    (lambda: emjax.MultinomialMixture(2, pseudo_count=-1.0), "pseudo_count must be a finite number >= 0; got -1.0"),
    (lambda: emjax.PoissonMixture(2, pseudo_count=0.0), "pseudo_count must be > 0 for PoissonMixture"),
    (lambda: emjax.CategoricalMixture(2, [2, 3]), r"n_categories must be a non-empty tuple.*\[2, 3\]"),
    (lambda: emjax.CategoricalMixture(2, (2, 0)), r"n_categories must be.*\(2, 0\)"),
])
def test_bad_configuration(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_wrong_params_shape_is_refused():
    with pytest.raises(ValueError, match=r"params.probs must have shape \(2, 3\)"):
        emjax.em(emjax.BernoulliMixture(2), (np.full(2, 0.5), np.full((2, 4), 0.5)), np.eye(3))


def test_free_parameters():
    k, n_cat = 3, (3, 2, 4)
    assert emjax.CategoricalMixture(k, n_cat).n_free_parameters(None) == 2 + 3 * (2 + 1 + 3)
    params = emjax.MultinomialMixtureParams(np.ones(k) / k, np.ones((k, 5)) / 5)
    assert emjax.MultinomialMixture(k).n_free_parameters(params) == 2 + 3 * 4
    assert emjax.PoissonMixture(k).n_free_parameters(emjax.PoissonMixtureParams(*params)) == 2 + 3 * 5
