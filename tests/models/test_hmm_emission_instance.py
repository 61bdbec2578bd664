"""HMM(emission=<Emission instance>): the same model as the string form, bit for bit; a
multinomial HMM (no string form) against brute-force enumeration of every state path; the
deprecated ``regularization=`` spelling warns and gives the equal model."""
import jax
import numpy as np
import pytest
from scipy import stats

import emjax
from reference.hmm import enumerate_paths

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("string, instance, data", [
    (dict(emission="poisson"), emjax.PoissonEmission(), RNG.poisson(3.0, (3, 20, 2)).astype(float)),
    (dict(covariance_type="diag"), emjax.GaussianEmission(covariance_type="diag"),
     RNG.normal(size=(3, 20, 2)) + 3 * (RNG.random((3, 20, 1)) < 0.5)),
])
def test_emission_instance_fits_bit_for_bit_as_string(x64, string, instance, data):
    a = emjax.fit(emjax.HMM(2, **string), data, jax.random.key(0), n_init=2, max_iter=20)
    b = emjax.fit(emjax.HMM(2, emission=instance), data, jax.random.key(0), n_init=2, max_iter=20)
    np.testing.assert_array_equal(a.restarts.objective, b.restarts.objective)
    for got, want in zip(jax.tree_util.tree_leaves(b.params), jax.tree_util.tree_leaves(a.params)):
        np.testing.assert_array_equal(got, want)


def test_emission_instance_with_conflicting_fields_is_refused():
    with pytest.raises(ValueError, match=r"takes its options from the emission instance; got "
                                         r"covariance_type='diag'"):
        emjax.HMM(2, emission=emjax.GaussianEmission(), covariance_type="diag")
    with pytest.raises(ValueError, match="emission must be one of"):
        emjax.HMM(2, emission="multinomial")


def test_old_regularization_spelling_warns_and_equals_pseudo_count():
    with pytest.warns(DeprecationWarning, match="pseudo_count=0"):
        old = emjax.HMM(2, emission="poisson", regularization="none")
    new = emjax.HMM(2, emission="poisson", pseudo_count=0)
    assert old == new and hash(old) == hash(new) and repr(old) == repr(new)
    with pytest.warns(DeprecationWarning):
        assert emjax.HMM(2, regularization="prior") == emjax.HMM(2)


def multinomial_log_emissions(x, probs):
    """``(t, k)`` log p(x_t | state) by SciPy."""
    return np.stack([stats.multinomial.logpmf(x, n=x.sum(1), p=p) for p in probs], 1)


def test_multinomial_hmm_equals_enumeration(x64):
    k, lengths, v = 2, np.array([4, 3, 2]), 3
    x = RNG.multinomial(6, [0.5, 0.3, 0.2], size=(3, 4)).astype(float)
    x[1, 3:] = x[2, 2:] = 7.0  # padding: garbage that must change nothing
    initial, trans = np.array([0.6, 0.4]), np.array([[0.8, 0.2], [0.3, 0.7]])
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])
    params = emjax.HMMParams(initial, trans, emjax.MultinomialEmissionParams(probs))
    model = emjax.HMM(k, emission=emjax.MultinomialEmission(pseudo_count=0), pseudo_count=0)
    start, counts, sums, lls = np.zeros(k), np.zeros((k, k)), np.zeros((k, v)), []
    for xs, n in zip(x, lengths):
        log_emit = np.zeros((4, k))
        log_emit[:n] = multinomial_log_emissions(xs[:n], probs)
        ll, gamma, xi, _ = enumerate_paths(initial, trans, log_emit, n)
        lls.append(ll)
        start += gamma[0]
        counts += xi.sum(0)
        sums += gamma[:n].T @ xs[:n]
    np.testing.assert_allclose(model.log_prob(params, (x, lengths)), lls, rtol=1e-12)
    got = emjax.em(model, params, (x, lengths), max_iter=1, tol=0.0, throw=False).params
    np.testing.assert_allclose(got.initial, start / start.sum(), rtol=1e-10)
    np.testing.assert_allclose(got.transitions, counts / counts.sum(1, keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(got.emission.probs, sums / sums.sum(1, keepdims=True), rtol=1e-10)
