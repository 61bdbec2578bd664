"""Discrete emissions (:class:`~emjax.components.emission.Emission`): categorical, Poisson,
Bernoulli and multinomial, over :mod:`emjax.components.discrete`.

With ``pseudo_count = c > 0`` each component gets its conjugate prior (Dirichlet(1 + c) per
categorical row or multinomial, Beta(1 + c, 1 + c), Gamma(1 + c, c)); ``c = 0`` is maximum
likelihood (hmmlearn's update), where a component with no weight keeps its parameters. ``init``
starts from k-means++ seeds over the rows (one-hot codes for categorical data) and one M-step from
the nearest-seed assignment with Laplace smoothing, so no starting probability is exactly zero.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core import discrete_validation as checks
from ..core.validation import check_nonnegative_number, check_probabilities, is_positive_int
from . import PSEUDO_COUNT, seeding
from . import discrete as dc
from .emission import Emission

#: Pseudo-count of the starting M-step (Laplace smoothing): starting probabilities stay positive.
INIT_PSEUDO_COUNT = 1.0


class CategoricalEmissionParams(NamedTuple):
    """probs ``(k, f, c_max)``: feature ``j``'s category probabilities, zero past ``c_j``.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> params = emjax.HMMParams(jnp.array([0.5, 0.5]), jnp.array([[0.9, 0.1], [0.1, 0.9]]),
        ...     emjax.CategoricalEmissionParams(jnp.array([[[0.9, 0.1]], [[0.1, 0.9]]])))
        >>> model = emjax.CategoricalHMM(2, n_categories=(2,))
        >>> model.predict(params, jnp.array([[[0], [0], [1], [1]]])).tolist()
        [[0, 0, 1, 1]]
    """

    probs: jnp.ndarray


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


class BernoulliEmissionParams(NamedTuple):
    """probs ``(k, d)``: probability of a 1.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> params = emjax.HMMParams(jnp.array([0.5, 0.5]), jnp.array([[0.9, 0.1], [0.1, 0.9]]),
        ...                          emjax.BernoulliEmissionParams(probs=jnp.array([[0.1], [0.9]])))
        >>> emjax.BernoulliHMM(2).predict(params, jnp.array([[[0.0], [0.0], [1.0], [1.0]]])).tolist()
        [[0, 0, 1, 1]]
    """

    probs: jnp.ndarray


def _kmeans_responsibilities(key, features, weights, k):
    """Nearest-seed one-hot ``(k, n)`` from k-means++ seeds over ``features`` ``(n, e)``."""
    seeds = seeding.kmeans_plusplus(key, features, weights, k)
    return seeding.nearest_responsibilities(features, seeds) * weights


class DiscreteEmission(Emission):
    """What the discrete emissions share: ``pseudo_count`` (checked), no standardisation (the data
    are counts, codes or bits), probabilities checked finite and non-negative."""

    def __post_init__(self):
        check_nonnegative_number(self.pseudo_count, "pseudo_count")

    def validate_params(self, params, k, d, prefix="params.emission", context=None):
        super().validate_params(params, k, d, prefix, context or f"{self.family} emissions")
        for field, value in zip(self.params_type._fields, params):
            check_probabilities(value, f"{prefix}.{field}", normalized=False)

    def _keep_empty(self, counts, new, old):
        """Maximum likelihood (``pseudo_count`` 0): a component with no weight keeps ``old``
        (``old`` None: a start, where every component has weight)."""
        if self.pseudo_count > 0 or old is None:
            return new
        return jnp.where(counts.reshape(counts.shape + (1,) * (new.ndim - counts.ndim)) > 0, new, old)


@dataclasses.dataclass(frozen=True)
class CategoricalEmission(DiscreteEmission):
    """One or several categorical features; ``n_categories[j]`` symbols for feature ``j`` (codes
    ``0..n_categories[j]-1``, -1 missing: it contributes nothing).

    Examples:
        >>> import emjax
        >>> emission = emjax.CategoricalEmission(n_categories=(4, 2))
        >>> emjax.HMM(3, emission=emission).n_free_parameters(emjax.HMMParams(
        ...     [0.5, 0.5, 0.0], [[1.0, 0, 0]] * 3, emjax.CategoricalEmissionParams([[[0.25] * 4] * 2] * 3)))
        13
    """

    n_categories: tuple
    pseudo_count: float = PSEUDO_COUNT
    params_type = CategoricalEmissionParams
    family = "categorical"

    def __post_init__(self):
        super().__post_init__()
        cats = self.n_categories
        if not isinstance(cats, tuple) or not cats or not all(is_positive_int(c) for c in cats):
            raise ValueError("n_categories must be a non-empty tuple of positive integers (one per "
                             f"feature); got {cats!r}.")

    def log_density(self, params, x):
        return dc.categorical_log_density(x, params.probs)

    def stats(self, params, x, resp):
        return dc.categorical_stats(x, resp, max(self.n_categories))

    def m_step(self, stats, params):
        probs = dc.categorical_update(stats, self.n_categories, self.pseudo_count)
        if self.pseudo_count == 0 and params is not None:  # a state with no weight keeps its table
            probs = jnp.where(jnp.sum(stats, axis=-1, keepdims=True) > 0, probs, params.probs)
        return CategoricalEmissionParams(probs)

    def log_prior(self, params):
        return dc.categorical_log_prior(params.probs, self.n_categories, self.pseudo_count)

    def is_degenerate(self, params):
        return jnp.zeros((), bool)

    def init(self, key, x, weights, k):
        c = max(self.n_categories)
        one_hot = jax.nn.one_hot(x, c, dtype=weights.dtype).reshape(x.shape[0], -1)
        resp = _kmeans_responsibilities(key, one_hot, weights, k)
        return CategoricalEmissionParams(dc.categorical_update(
            dc.categorical_stats(x, resp, c), self.n_categories, INIT_PSEUDO_COUNT))

    def sample(self, key, params, states):
        logits = jnp.where(params.probs > 0, jnp.log(jnp.where(params.probs > 0, params.probs, 1)), -jnp.inf)
        return jax.random.categorical(key, logits[states]).astype(jnp.int32)

    def validate(self, x, name="data"):
        return checks.as_category_array(x, self.n_categories, name)

    def param_shapes(self, k, d):
        return {"probs": (k, len(self.n_categories), max(self.n_categories))}

    def n_features(self, params):
        return len(self.n_categories)

    def n_free_parameters(self, params):
        return int(np.shape(params.probs)[0]) * sum(c - 1 for c in self.n_categories)

    def work_per_row(self, k, d):
        return 2 * d * max(self.n_categories)

    def work_per_step(self, k, d):
        return d * max(self.n_categories) + 2 * k


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
        counts, sums = dc.poisson_stats(x, _kmeans_responsibilities(key, x, weights, k))
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
class BernoulliEmission(DiscreteEmission):
    """Independent binary features; Beta(1 + c, 1 + c) prior on each probability.

    Examples:
        >>> import emjax
        >>> emjax.HMM(2, emission=emjax.BernoulliEmission()).emission_model.pseudo_count
        0.001
    """

    pseudo_count: float = PSEUDO_COUNT
    params_type = BernoulliEmissionParams
    family = "Bernoulli"

    def log_density(self, params, x):
        return dc.bernoulli_log_density(x, params.probs)

    def stats(self, params, x, resp):
        return dc.bernoulli_stats(x, resp)

    def m_step(self, stats, params):
        probs = dc.bernoulli_update(*stats, self.pseudo_count)
        return BernoulliEmissionParams(self._keep_empty(stats[0], probs, params and params.probs))

    def log_prior(self, params):
        return dc.bernoulli_log_prior(params.probs, self.pseudo_count)

    def is_degenerate(self, params):
        return ~jnp.all((params.probs >= 0) & (params.probs <= 1))

    def init(self, key, x, weights, k):
        stats = dc.bernoulli_stats(x, _kmeans_responsibilities(key, x, weights, k))
        return BernoulliEmissionParams(dc.bernoulli_update(*stats, INIT_PSEUDO_COUNT))

    def sample(self, key, params, states):
        probs = jnp.asarray(params.probs)
        return jax.random.bernoulli(key, probs[states]).astype(probs.dtype)

    def validate(self, x, name="data"):
        return checks.as_binary_array(x, name)

    def param_shapes(self, k, d):
        return {"probs": (k, d)}

    def work_per_row(self, k, d):
        return 2 * d

    def work_per_step(self, k, d):
        return 3 * d + 3 * k


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
        sums = dc.multinomial_stats(x, _kmeans_responsibilities(key, x, weights, k))
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
