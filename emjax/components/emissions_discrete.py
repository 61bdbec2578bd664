"""Discrete emissions (:class:`~emjax.components.emission.Emission`) over
:mod:`emjax.components.discrete`: categorical and Bernoulli here, the count families (Poisson,
multinomial) in :mod:`emjax.components.emissions_counts`.

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


def kmeans_responsibilities(key, features, weights, k):
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
        resp = kmeans_responsibilities(key, one_hot, weights, k)
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
        stats = dc.bernoulli_stats(x, kmeans_responsibilities(key, x, weights, k))
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
