"""The generic mixture (emjax.Mixture over any Emission): the named discrete mixtures are the same
model (an invariant: two spellings, one fit, bit for bit), a Gaussian emission recovers separated
clusters, and bad arguments are refused before anything is traced. Its EM step against a NumPy
reference runs in the differential registry ("mixture-poisson-emission")."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax

RNG = np.random.default_rng(3)
COUNTS = np.concatenate([RNG.poisson(2.0, (60, 2)), RNG.poisson(15.0, (60, 2))]).astype(float)


@pytest.mark.parametrize("named, emission", [
    (emjax.PoissonMixture(3, pseudo_count=0.05), emjax.PoissonEmission(0.05)),
    (emjax.MultinomialMixture(3), emjax.MultinomialEmission()),
])
def test_named_mixture_is_the_generic_mixture_bit_for_bit(x64, named, emission):
    generic = emjax.Mixture(3, emission, pseudo_count=named.pseudo_count, start="rows_and_mean")
    a = emjax.fit(named, COUNTS, jax.random.key(0), n_init=2, max_iter=30)
    b = emjax.fit(generic, COUNTS, jax.random.key(0), n_init=2, max_iter=30)
    np.testing.assert_array_equal(a.restarts.objective, b.restarts.objective)
    np.testing.assert_array_equal(a.params.weights, b.params.weights)
    np.testing.assert_array_equal(a.params[1], b.params.emission[0])
    assert named.n_free_parameters(a.params) == generic.n_free_parameters(b.params)


def test_gaussian_emission_mixture_finds_separated_clusters():
    x = np.concatenate([RNG.normal(-5, 1, (100, 2)), RNG.normal(5, 1, (100, 2))]).astype(np.float32)
    model = emjax.Mixture(2, emjax.GaussianEmission(covariance_type="diag"))
    assert model.standardizer() is not None  # the emission's standardisation
    res = emjax.fit(model, x, jax.random.key(0), n_init=2)
    means = np.sort(np.asarray(res.params.emission.means)[:, 0])
    np.testing.assert_allclose(means, [-5, 5], atol=0.5)
    assert res.params.emission.means.dtype == jnp.float32


def test_mixture_refuses_bad_arguments():
    with pytest.raises(TypeError, match="emission must be an emjax.Emission"):
        emjax.Mixture(2, "poisson")
    with pytest.raises(ValueError, match="n_components"):
        emjax.Mixture(0, emjax.PoissonEmission())
    with pytest.raises(ValueError, match="start must be one of"):
        emjax.Mixture(2, emjax.PoissonEmission(), start="kmeans")
    with pytest.raises(ValueError, match="pseudo_count"):
        emjax.PoissonEmission(pseudo_count=-1.0)
    model = emjax.Mixture(2, emjax.PoissonEmission())
    bad = emjax.MixtureParams(jnp.array([0.5, 0.5]), emjax.PoissonEmissionParams(jnp.ones((2, 3))))
    with pytest.raises(ValueError, match=r"params.emission.rates must have shape \(2, 2\)"):
        model.log_prob(bad, COUNTS)
    with pytest.raises(TypeError, match="params must be MixtureParams"):
        model.log_prob((jnp.ones(2),), COUNTS)
