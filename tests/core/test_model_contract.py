"""The model contract (emjax/core/model.py): five abstract methods, the rest opt-in; standardisation
as one Standardizer object (emjax/core/standardizer.py)."""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from emjax.core.standardizer import RowStandardizer, standardizer_of
from emjax.engine.raw_rows import OnRawRows, chunked_transform


class TwoMeans(NamedTuple):
    weights: jnp.ndarray
    means: jnp.ndarray


@dataclasses.dataclass(frozen=True)
class UnitVarianceMixture(emjax.Model):
    """A user model with only the five required methods: a 1-D mixture of two unit-variance
    Gaussians (weights and means are fitted)."""

    def _joint(self, params, x):
        return (jnp.log(params.weights)[None] - 0.5 * (x[:, None] - params.means[None]) ** 2
                - 0.5 * jnp.log(2 * jnp.pi))

    def init(self, key, x, weights):
        return TwoMeans(jnp.full((2,), 0.5, x.dtype), jax.random.choice(key, x, (2,), replace=False))

    def e_step(self, params, x, weights):
        joint = self._joint(params, x)
        row = jax.scipy.special.logsumexp(joint, axis=1)
        resp = jnp.exp(joint - row[:, None]) * weights[:, None]
        return (resp.sum(0), resp.T @ x), jnp.sum(weights * row)

    def m_step(self, stats, params):
        counts, sums = stats
        return TwoMeans(counts / counts.sum(), sums / counts)

    def log_prob(self, params, x):
        return jax.scipy.special.logsumexp(self._joint(params, x), axis=1)

    def posterior(self, params, x):
        return jax.nn.softmax(self._joint(params, x), axis=1)


def numpy_em(x, weights, means, n_iter):
    """EM for the same model in NumPy (float64)."""
    for _ in range(n_iter):
        joint = np.log(weights)[None] - 0.5 * (x[:, None] - means[None]) ** 2
        resp = np.exp(joint - joint.max(1, keepdims=True))
        resp /= resp.sum(1, keepdims=True)
        counts = resp.sum(0)
        weights, means = counts / counts.sum(), resp.T @ x / counts
    return weights, means


def test_a_model_missing_a_required_method_is_refused_at_construction_naming_it():
    @dataclasses.dataclass(frozen=True)
    class NoPosterior(emjax.Model):
        init = UnitVarianceMixture.init
        e_step = UnitVarianceMixture.e_step
        m_step = UnitVarianceMixture.m_step
        log_prob = UnitVarianceMixture.log_prob

    with pytest.raises(TypeError, match="posterior"):
        NoPosterior()


def test_old_standardisation_hooks_are_refused_with_what_to_write_instead():
    with pytest.raises(TypeError, match="transform_passes.*standardizer()"):
        @dataclasses.dataclass(frozen=True)
        class OldStyle(UnitVarianceMixture):
            def transform_passes(self):
                return 1


def test_old_hooks_inherited_from_a_mixin_are_refused_and_a_model_may_be_its_own_standardizer():
    class OldMixin:
        def standardize(self, data, weights):
            return data, None, 0.0

    with pytest.raises(TypeError, match="standardize.*standardizer()"):
        class Mixed(OldMixin, UnitVarianceMixture):
            pass

    class SelfStandardizing(UnitVarianceMixture, emjax.core.standardizer.Standardizer):
        def standardizer(self):
            return self

        def standardize(self, data, weights):
            return data, None, jnp.zeros(())

        def params_to_standard(self, params, transform):
            return params

        def params_from_standard(self, params, transform):
            return params

    assert standardizer_of(SelfStandardizing()) == SelfStandardizing()


def test_a_standardizer_that_is_not_one_is_refused_naming_the_model():
    class Wrong(UnitVarianceMixture):
        def standardizer(self):
            return "z-score"

    with pytest.raises(TypeError, match=r"Wrong.standardizer\(\) must return None or .*Standardizer.*got str"):
        standardizer_of(Wrong())


def test_generalized_em_models_are_refused_by_stream_fit_and_online_em_before_tracing():
    model = emjax.EnumeratedMixture(lambda params, x, z: -(x - params[z]) ** 2,
                                    lambda key, x, w: jnp.zeros(2), n_states=2)
    with pytest.raises(ValueError, match="revisits the rows.*generalized EM"):
        emjax.stream_fit(model, [np.zeros(10)], jax.random.key(0))
    with pytest.raises(ValueError, match="revisits the rows.*generalized EM"):
        emjax.OnlineEM(model, jax.random.key(0))


def test_minimal_user_model_fits_like_numpy_em(x64):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, 150), rng.normal(3, 1, 100)])
    start = TwoMeans(jnp.array([0.5, 0.5]), jnp.array([-1.0, 1.0]))
    res = emjax.em(UnitVarianceMixture(), start, x, max_iter=500, tol=1e-12)
    assert res.status == emjax.Status.CONVERGED
    weights, means = numpy_em(x, np.array([0.5, 0.5]), np.array([-1.0, 1.0]), 2000)
    np.testing.assert_allclose(res.params.weights, weights, rtol=1e-6)
    np.testing.assert_allclose(res.params.means, means, rtol=1e-6)
    fitted = emjax.fit(UnitVarianceMixture(), x, jax.random.key(0), n_init=3, max_iter=500, tol=1e-12)
    np.testing.assert_allclose(np.sort(fitted.params.means), np.sort(means), rtol=1e-6)


def test_optional_parts_default_or_name_what_is_missing():
    model = UnitVarianceMixture()
    params = TwoMeans(jnp.array([0.5, 0.5]), jnp.array([-1.0, 1.0]))
    assert model.standardizer() is None and float(model.log_prior(params)) == 0.0
    assert not bool(model.is_degenerate(params))
    with pytest.raises(TypeError, match="does not define n_free_parameters, which emjax.bic needs"):
        emjax.bic(model, params, np.array([0.0, 1.0, 2.0], np.float32))
    with pytest.raises(TypeError, match="does not define n_free_parameters, which emjax.aic needs"):
        emjax.aic(model, params, np.array([0.0, 1.0, 2.0], np.float32))


@pytest.mark.parametrize("missing", ["error", "marginalize"])
def test_gaussian_standardizer_gives_one_transform_streamed_chunked_and_in_memory(x64, missing):
    """The transform of GaussianMixture's standardiser from chunks added up (as stream_fit does),
    from the engine's chunked passes, and from all rows at once, against NumPy's weighted moments."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(53, 3)) * np.array([1e-3, 1.0, 40.0]) + np.array([1e4, -7.0, 3e3])
    if missing == "marginalize":
        x[rng.uniform(size=x.shape) < 0.1] = np.nan
    w = rng.uniform(0.1, 2.0, size=53)
    standardizer = emjax.GaussianMixture(2, "diag", missing=missing).standardizer()
    assert isinstance(standardizer, RowStandardizer)

    totals = ()
    for _ in range(standardizer.passes()):  # streamed: one chunk at a time, summed on the host
        chunks = [standardizer.stats(jnp.asarray(x[i:i + 10]), jnp.asarray(w[i:i + 10]), totals)
                  for i in range(0, 53, 10)]
        totals += (jax.tree_util.tree_map(lambda *a: sum(a), *chunks),)
    streamed, streamed_jacobian = standardizer.from_stats(totals)
    chunked, chunked_jacobian = chunked_transform(standardizer, jnp.asarray(x), jnp.asarray(w), 16)
    _, whole, whole_jacobian = standardizer.standardize(jnp.asarray(x), jnp.asarray(w))

    observed = ~np.isnan(x)
    weight = w @ observed
    mean = w @ np.where(observed, x, 0) / weight
    std = np.sqrt(w @ np.where(observed, (x - mean) ** 2, 0) / weight)
    for transform, jacobian in ((streamed, streamed_jacobian), (chunked, chunked_jacobian),
                                (whole, whole_jacobian)):
        np.testing.assert_allclose(transform.shift, mean, rtol=1e-12)
        np.testing.assert_allclose(transform.scale, std, rtol=1e-10)
        np.testing.assert_allclose(jacobian, -(weight / w.sum()) @ np.log(std), rtol=1e-10)


def test_wrappers_forward_what_they_do_not_change():
    """OnRawRows standardises rows for the methods that read them and is the model elsewhere."""
    model = emjax.GaussianMixture(2, "diag")
    x = jnp.asarray(np.random.default_rng(3).normal(size=(30, 2)) * 5 + 10)
    w = jnp.ones(30)
    transform, _ = chunked_transform(model.standardizer(), x, w, 8)
    raw = OnRawRows(model, transform)
    params = emjax.GMMParams(jnp.array([0.4, 0.6]), jnp.array([[-1.0, 0.0], [1.0, 0.5]]),
                             jnp.ones((2, 2)))
    z = model.standardizer().apply(x, transform)
    np.testing.assert_allclose(raw.log_prob(params, x), model.log_prob(params, z), rtol=1e-6)
    assert float(raw.log_prior(params)) == float(model.log_prior(params))
    np.testing.assert_allclose(raw.to_unconstrained(params).covariances,
                               model.to_unconstrained(params).covariances)
    assert standardizer_of(raw).passes() == 0  # rows it reads are already standardised


def test_delegate_refuses_a_name_the_target_does_not_define():
    """A wrapper that forwards a method its target lacks fails when the class is defined, naming
    the method, not when the engine first calls it."""
    from emjax.core.model import delegate

    with pytest.raises(TypeError, match="GaussianMixture has no method 'm_stepp'"):
        @delegate("mixture", emjax.GaussianMixture, "log_prob", "m_stepp")
        class Misspelt:
            pass

    @delegate("mixture", emjax.GaussianMixture, "log_prob")
    @dataclasses.dataclass(frozen=True)
    class Forwarding:
        mixture: emjax.GaussianMixture

    params = emjax.GMMParams(jnp.array([0.5, 0.5]), jnp.array([[0.0], [2.0]]), jnp.ones((2, 1)))
    x = jnp.array([[0.5], [1.5]])
    mixture = emjax.GaussianMixture(2, "diag")
    np.testing.assert_array_equal(Forwarding(mixture).log_prob(params, x), mixture.log_prob(params, x))
