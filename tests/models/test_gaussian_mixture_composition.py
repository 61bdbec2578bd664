"""GaussianMixture as a composition: the generic mixture (EmissionMixture) over a GaussianEmission.

Its own E-step (models/gaussian_mixture_estep.py) checked against the generic mixture's,
emjax.Mixture(k, GaussianEmission(...)), on the same parameters (identical statistics and M-step;
log_prob, posterior and predict are the generic mixture's own code, so comparing those would check
nothing), and its E-step + M-step
against the NumPy reference of tests/differential/references.py (float64, with and without the
prior, missing values, the expanded E-step of one unbatched restart). Sampling and the padding
mask are the generic mixture's, checked on a discrete mixture and on padded slots."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from emjax.components.emissions_gaussian import GaussianEmission
from emjax.models.mixture import EmissionMixture
from differential import references as ref
from helpers import blobs

COV_TYPES = ("full", "tied", "diag", "spherical")


def gmm_params(cov_type, k=3, d=2, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k, d, d)) * 0.3 + np.eye(d)
    full = a @ np.swapaxes(a, 1, 2)
    cov = {"full": full, "tied": full[0], "diag": np.diagonal(full, axis1=1, axis2=2),
           "spherical": np.diagonal(full, axis1=1, axis2=2).mean(1)}[cov_type]
    weights = rng.dirichlet(np.ones(k) * 5)
    return emjax.GMMParams(*(jnp.asarray(p, dtype) for p in (weights, rng.normal(scale=3, size=(k, d)), cov)))


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gmm_e_step_and_m_step_equal_the_generic_mixture_of_a_gaussian_emission(cov_type):
    x, _ = blobs(n=200, d=2, k=3, seed=1)
    gmm = emjax.GaussianMixture(3, cov_type, pseudo_count=0.01, reg_covar=1e-4)
    emission = GaussianEmission(cov_type, reg_covar=1e-4, pseudo_count=0.01)
    generic = emjax.Mixture(3, emission, pseudo_count=0.01)
    assert isinstance(gmm, EmissionMixture) and gmm.emission_model == emission
    params = gmm_params(cov_type)
    as_generic = emjax.MixtureParams(params.weights, emjax.GaussianEmissionParams(*params[1:]))
    w = jnp.asarray(np.random.default_rng(2).uniform(0, 2, len(x)), jnp.float32)
    (counts, sums, second), ll = jax.jit(gmm.e_step)(params, jnp.asarray(x), w)
    (generic_counts, emission_stats), generic_ll = jax.jit(generic.e_step)(as_generic, jnp.asarray(x), w)
    for got, want in zip((counts, sums, second, ll), (*emission_stats, generic_ll)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(counts, generic_counts, rtol=1e-6)
    # the M-step: the emission's means and covariances; weights (N_k + c) / (N + K c) both ways
    new = gmm.m_step((counts, sums, second), params)
    generic_new = generic.m_step((generic_counts, emission_stats), as_generic)
    np.testing.assert_array_equal(new.means, generic_new.emission.means)
    np.testing.assert_array_equal(new.covariances, generic_new.emission.covariances)
    np.testing.assert_allclose(new.weights, generic_new.weights, rtol=1e-6)
    assert gmm.n_free_parameters(params) == generic.n_free_parameters(as_generic)


def standardised(x):
    """``x`` with every feature at mean 0 and variance 1 over its observed rows (the reference's
    standardising map is then the identity, so both sides step in one set of coordinates)."""
    mean = np.nanmean(x, axis=0)
    return (x - mean) / np.sqrt(np.nanmean((x - mean) ** 2, axis=0))


@pytest.mark.parametrize("cov_type, pseudo_count, missing, unbatched", [
    ("full", 0.5, "error", False), ("tied", 0.0, "error", False), ("diag", 1e-3, "error", True),
    ("spherical", 0.1, "error", False), ("full", 1e-3, "marginalize", False),
    ("diag", 0.0, "marginalize", False)])
def test_e_and_m_step_match_the_numpy_reference(x64, cov_type, pseudo_count, missing, unbatched):
    x, _ = blobs(n=120, d=3, k=2, seed=4, dtype=np.float64)
    if missing == "marginalize":
        x[np.random.default_rng(5).random(x.shape) < 0.15] = np.nan
    x = standardised(x) if pseudo_count > 0 else x - np.nanmean(x, axis=0)
    model = emjax.GaussianMixture(2, cov_type, pseudo_count=pseudo_count, missing=missing, collapse_guard=False)
    model = model.with_formulation(emjax.Formulation(unbatched=unbatched))
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), gmm_params(cov_type, k=2, d=3, seed=6))
    stats, loglik = jax.jit(model.e_step)(params, jnp.asarray(x), jnp.ones(len(x)))
    got = model.m_step(stats, params)
    want, objective = ref.gmm_step(tuple(np.asarray(p) for p in params), x, cov_type, model.reg_covar,
                                   pseudo_count=pseudo_count)
    for name, a, b in zip(("weights", "means", "covariances"), got, want):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-8, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(float(loglik + model.log_prior(params)) / len(x), objective, rtol=1e-9)


def test_padded_slots_are_not_degenerate_but_an_empty_active_one_is():
    model = emjax.GaussianMixture(3, "diag")
    params = gmm_params("diag")._replace(weights=jnp.array([0.6, 0.4, 0.0]))
    assert bool(model.is_degenerate(params))
    assert not bool(model.is_degenerate(params, jnp.array([True, True, False])))
    poisson = emjax.PoissonMixture(2)  # the same generic check for every mixture
    rates = jnp.ones((2, 1))
    assert bool(poisson.is_degenerate(emjax.PoissonMixtureParams(jnp.array([1.0, 0.0]), rates)))
    assert not bool(poisson.is_degenerate(emjax.PoissonMixtureParams(jnp.array([1.0, 0.0]), rates),
                                          jnp.array([True, False])))


def test_every_mixture_samples_through_its_emission():
    model = emjax.PoissonMixture(2)
    params = emjax.PoissonMixtureParams(jnp.array([0.25, 0.75]), jnp.array([[1.0, 2.0], [30.0, 40.0]]))
    x, labels = model.sample(jax.random.key(0), params, 4000)
    assert x.shape == (4000, 2) and labels.shape == (4000,)
    labels, x = np.asarray(labels), np.asarray(x)
    assert abs(np.mean(labels == 0) - 0.25) < 0.03
    np.testing.assert_allclose(x[labels == 1].mean(0), [30.0, 40.0], rtol=0.03)
    with pytest.raises(ValueError, match="params.weights must sum to 1"):
        model.sample(jax.random.key(0), params._replace(weights=jnp.array([0.5, 0.7])), 5)
    with pytest.raises(TypeError, match="MultinomialEmission does not define sample"):
        emjax.MultinomialMixture(2).sample(jax.random.key(0), (jnp.ones(2) / 2, jnp.ones((2, 3)) / 3), 5)
