"""Count emissions (:class:`~emjax.components.emission.Emission`): Poisson and multinomial, over
:mod:`emjax.components.discrete`, with the prior, maximum-likelihood and start conventions of
:mod:`emjax.components.emissions_discrete`.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core import discrete_validation as checks
from . import PSEUDO_COUNT
from . import discrete as dc
from .emissions_discrete import INIT_PSEUDO_COUNT, DiscreteEmission, kmeans_responsibilities


class PoissonEmissionParams(NamedTuple):
    """rates ``(k, d)``.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> params = emjax.HMMParams(jnp.array([0.5, 0.5]), jnp.array([[0.9, 0.1], [0.1, 0.9]]),
        ...                          emjax.PoissonEmissionParams(rates=jnp.array([[1.0], [10.0]])))
        >>> emjax.PoissonHMM(2).predict(params, jnp.array([[[0], [1], [11], [9]]])).tolist()
        [[0, 0, 1, 1]]
    """

    rates: jnp.ndarray


class MultinomialEmissionParams(NamedTuple):
    """probs ``(k, v)``: outcome probabilities per component (rows sum to 1).

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> params = emjax.MultinomialEmissionParams(probs=jnp.array([[0.9, 0.1], [0.1, 0.9]]))
        >>> emjax.MultinomialEmission().log_density(params, jnp.array([[5.0, 0.0]])).argmax(axis=0).tolist()
        [0]
    """

    probs: jnp.ndarray


@dataclasses.dataclass(frozen=True)
class PoissonEmission(DiscreteEmission):
    """Independent Poisson counts per feature; Gamma(1 + c, c) prior on each rate.

    Examples:
        >>> import jax, numpy as np, emjax
        >>> counts = np.random.default_rng(0).poisson([[2.0]] * 100 + [[20.0]] * 100)
        >>> res = emjax.fit(emjax.Mixture(2, emjax.PoissonEmission()), counts, jax.random.key(0), n_init=2)
        >>> sorted(round(float(r)) for r in res.params.emission.rates[:, 0])
        [2, 20]
    """

    pseudo_count: float = PSEUDO_COUNT
    params_type = PoissonEmissionParams
    family = "Poisson"

    def log_density(self, params, x):
        return dc.poisson_log_density(x, params.rates)

    def stats(self, params, x, resp):
        return dc.poisson_stats(x, resp)

    def m_step(self, stats, params):
        counts, sums = stats
        if self.pseudo_count > 0:
            return PoissonEmissionParams(dc.poisson_update(counts, sums, self.pseudo_count, self.pseudo_count))
        safe = jnp.where(counts > 0, counts, 1)[:, None]
        return PoissonEmissionParams(self._keep_empty(counts, sums / safe, params and params.rates))

    def log_prior(self, params):
        if self.pseudo_count == 0:
            return jnp.zeros((), params.rates.dtype)
        return dc.poisson_log_prior(params.rates, self.pseudo_count, self.pseudo_count)

    def is_degenerate(self, params):
        return ~jnp.all(params.rates >= 0)

    def init(self, key, x, weights, k):
        counts, sums = dc.poisson_stats(x, kmeans_responsibilities(key, x, weights, k))
        return PoissonEmissionParams(dc.poisson_update(counts, sums, INIT_PSEUDO_COUNT, INIT_PSEUDO_COUNT))

    def sample(self, key, params, states):
        rates = jnp.asarray(params.rates)
        return jax.random.poisson(key, rates[states]).astype(rates.dtype)

    def validate(self, x, name="data"):
        return checks.as_count_array(x, name)

    def param_shapes(self, k, d):
        return {"rates": (k, d)}

    def work_per_row(self, k, d):
        return 2 * d + 8 * k * d  # the density's temporaries per (component, feature)


@dataclasses.dataclass(frozen=True)
class MultinomialEmission(DiscreteEmission):
    """Count vectors ``(n, v)`` over ``v`` outcomes (each row's total is given, not modelled; an
    all-zero row has log-density 0); Dirichlet(1 + c) prior on each component's probabilities.

    Examples:
        >>> import jax, numpy as np, emjax
        >>> rng = np.random.default_rng(0)
        >>> counts = np.concatenate([rng.multinomial(20, [0.8, 0.1, 0.1], (3, 50)),
        ...                          rng.multinomial(20, [0.1, 0.1, 0.8], (3, 50))], axis=1)  # 6 sequences
        >>> model = emjax.HMM(2, emission=emjax.MultinomialEmission())   # a multinomial HMM
        >>> res = emjax.fit(model, counts, jax.random.key(0), n_init=2)
        >>> res.params.emission.probs.sum(axis=1).round(3).tolist()
        [1.0, 1.0]
    """

    pseudo_count: float = PSEUDO_COUNT
    params_type = MultinomialEmissionParams
    family = "multinomial"

    def log_density(self, params, x):
        return dc.multinomial_log_density(x, params.probs)

    def stats(self, params, x, resp):
        return dc.multinomial_stats(x, resp)

    def m_step(self, stats, params):
        probs = dc.multinomial_update(stats, self.pseudo_count)
        return MultinomialEmissionParams(self._keep_empty(jnp.sum(stats, axis=-1), probs,
                                                          params and params.probs))

    def log_prior(self, params):
        return dc.multinomial_log_prior(params.probs, self.pseudo_count)

    def is_degenerate(self, params):
        return ~jnp.all(params.probs >= 0)

    def init(self, key, x, weights, k):
        sums = dc.multinomial_stats(x, kmeans_responsibilities(key, x, weights, k))
        return MultinomialEmissionParams(dc.multinomial_update(sums, INIT_PSEUDO_COUNT))

    def validate(self, x, name="data"):
        return checks.as_count_array(x, name)

    def param_shapes(self, k, d):
        return {"probs": (k, d)}

    def n_free_parameters(self, params):
        k, v = np.shape(params.probs)
        return int(k * (v - 1))

    def work_per_row(self, k, d):
        return 2 * d
