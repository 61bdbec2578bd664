"""A family written once by a user, as an ``emjax.Emission``, gives both a mixture and an HMM:
one EM step of ``emjax.Mixture`` against the same step in NumPy, and the HMM's sequence
log-likelihood against brute-force enumeration of state paths."""
import dataclasses
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from reference.hmm import enumerate_paths


class ExponentialParams(typing.NamedTuple):
    rates: jnp.ndarray  # (k, d)


@dataclasses.dataclass(frozen=True)
class Exponential(emjax.Emission):
    """Independent exponential features, maximum likelihood (no prior)."""

    params_type = ExponentialParams

    def log_density(self, params, x):
        return jnp.sum(jnp.log(params.rates)[:, None] - params.rates[:, None] * x[None], axis=-1)

    def stats(self, params, x, resp):
        return jnp.sum(resp, axis=1), resp @ x

    def m_step(self, stats, params):
        counts, sums = stats
        return ExponentialParams(counts[:, None] / sums)

    def log_prior(self, params):
        return jnp.zeros((), params.rates.dtype)

    def is_degenerate(self, params):
        return ~jnp.all(jnp.isfinite(params.rates) & (params.rates > 0))

    def init(self, key, x, weights, k):
        return ExponentialParams(1 / (x[jax.random.choice(key, x.shape[0], (k,), replace=False)] + 0.5))


def exponential_log_density(x, rates):
    """``(n, k)`` in NumPy."""
    return (np.log(rates)[None] - rates[None] * x[:, None]).sum(-1)


def test_user_emission_mixture_step_equals_numpy(x64):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.exponential(1.0, (40, 2)), rng.exponential(8.0, (40, 2))])
    params = emjax.MixtureParams(jnp.array([0.3, 0.7]), ExponentialParams(jnp.array([[1.5, 0.8], [0.2, 0.1]])))
    model = emjax.Mixture(2, Exponential(), pseudo_count=0.0)
    lp = exponential_log_density(x, np.asarray(params.emission.rates)) + np.log([0.3, 0.7])
    resp = np.exp(lp - np.logaddexp.reduce(lp, axis=1, keepdims=True))
    np.testing.assert_allclose(model.log_prob(params, x), np.logaddexp.reduce(lp, axis=1), rtol=1e-12)
    got = emjax.em(model, params, x, max_iter=1, tol=0.0, throw=False).params
    np.testing.assert_allclose(got.weights, resp.mean(0), rtol=1e-12)
    np.testing.assert_allclose(got.emission.rates, resp.sum(0)[:, None] / (resp.T @ x), rtol=1e-12)
    res = emjax.fit(model, x, jax.random.key(0), n_init=4)
    assert emjax.Status(int(res.status)).name in ("CONVERGED", "MAX_ITER")


def test_user_emission_hmm_log_prob_equals_enumeration(x64):
    rng = np.random.default_rng(1)
    x = rng.exponential(2.0, (2, 5, 2))
    params = emjax.HMMParams(jnp.array([0.6, 0.4]), jnp.array([[0.8, 0.2], [0.3, 0.7]]),
                             ExponentialParams(jnp.array([[1.0, 2.0], [0.3, 0.5]])))
    model = emjax.HMM(2, emission=Exponential())
    want = [enumerate_paths(np.asarray(params.initial), np.asarray(params.transitions),
                            exponential_log_density(xs, np.asarray(params.emission.rates)), 5)[0] for xs in x]
    np.testing.assert_allclose(model.log_prob(params, x), want, rtol=1e-12)
    res = emjax.fit(model, x, jax.random.key(0), n_init=2, max_iter=30)
    assert emjax.Status(int(res.status)).name in ("CONVERGED", "MAX_ITER")


def test_user_emission_without_declared_shapes_still_checks_k_rows():
    model = emjax.Mixture(2, Exponential())
    params = emjax.MixtureParams(jnp.array([0.5, 0.5]), ExponentialParams(jnp.ones((3, 2))))
    with pytest.raises(ValueError, match=r"rates"):
        model.log_prob(params, np.ones((4, 2)))


def test_hmm_refuses_to_sample_an_emission_without_sample():
    with pytest.raises(TypeError, match="Exponential does not define sample, which HMM.sample needs"):
        emjax.HMM(2, emission=Exponential()).sample(
            jax.random.key(0), emjax.HMMParams(jnp.array([0.5, 0.5]), jnp.eye(2),
                                               ExponentialParams(jnp.ones((2, 1)))), n_steps=3)
