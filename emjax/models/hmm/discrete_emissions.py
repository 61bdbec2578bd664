"""Discrete HMM emissions (categorical, Poisson, Bernoulli): the interface of
:class:`emjax.models.hmm.emissions.GaussianEmission` over :mod:`emjax.components.discrete`.

With ``regularization="prior"`` each emission gets the component's conjugate prior with
pseudo-count ``c = PSEUDO_COUNT`` (Dirichlet(1 + c) per categorical row, Beta(1 + c, 1 + c),
Gamma(1 + c, c)); ``"none"`` is maximum likelihood (hmmlearn's update), where a state with no
weight keeps its parameters. Restarts start from k-means++ seeds over the steps (one-hot codes
for categorical data) and one M-step from the nearest-seed assignment with Laplace smoothing,
so no starting probability is exactly zero.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ...core import discrete_validation as checks
from ...components import PSEUDO_COUNT
from ...components import discrete as dc
from ...core.validation import check_param_shape
from .. import seeding
from .sequences import component_major

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


def _validate_steps(convert, x, lengths):
    """``convert`` every real step of ``x`` ``(s, t, f)`` (padding filled with 0); on an error,
    repeat it per sequence so the message names ``data[s]`` and the step within it."""
    x = np.asarray(x)
    mask = np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]
    filled = np.where(mask[:, :, None], x, 0) if x.dtype.kind in "biuf" else x
    try:
        flat = convert(filled.reshape(-1, x.shape[2]), "data")
    except ValueError:
        for s, length in enumerate(lengths):
            convert(x[s, :length], f"data[{s}] (steps x features)")
        raise
    return flat.reshape(x.shape)


def _kmeans_responsibilities(key, features, weights, k):
    """Nearest-seed one-hot ``(k, n)`` from k-means++ seeds over ``features`` ``(n, e)``."""
    seeds = seeding.kmeans_plusplus(key, features, weights, k)
    return seeding.nearest_responsibilities(features, seeds) * weights


def _check_shape(params, field, shape, family):
    check_param_shape(getattr(params, field), shape, f"params.emission.{field}",
                      f"{family} emissions", features_last=family != "categorical")


class _DiscreteEmission:
    """What the discrete emissions share: no standardisation (the data are counts, codes or
    bits), and step-major forms of their component-major ``log_density`` and ``stats`` (the
    scaled HMM E-step works on ``(t, s, k)`` arrays)."""

    @staticmethod
    def standardize(x, weights):
        """The data unchanged, no transform, log-Jacobian 0."""
        return x, None, jnp.zeros((), weights.dtype)

    def to_standard(self, params, transform):
        return params

    from_standard = to_standard

    def log_density_steps(self, params, x):
        """``(n, k)`` log-densities, step-major."""
        return self.log_density(params, x).T

    def stats_steps(self, params, x, resp):
        """:meth:`stats` for step-major responsibilities ``(t, s, k)`` of the rows ``x``."""
        return self.stats(params, x, component_major(resp))


@dataclasses.dataclass(frozen=True)
class CategoricalEmission(_DiscreteEmission):
    """One or several categorical features; ``n_categories[j]`` symbols for feature ``j``."""

    n_categories: tuple
    regularization: str = "prior"

    def _pseudo(self):
        return PSEUDO_COUNT if self.regularization == "prior" else 0.0

    def log_density(self, params, x):
        return dc.categorical_log_density(x, params.probs)

    def stats(self, params, x, resp):
        return dc.categorical_stats(x, resp, max(self.n_categories))

    def m_step(self, stats, params):
        probs = dc.categorical_update(stats, self.n_categories, self._pseudo())
        if self._pseudo() == 0:  # maximum likelihood: a state with no weight keeps its table
            probs = jnp.where(jnp.sum(stats, axis=-1, keepdims=True) > 0, probs, params.probs)
        return CategoricalEmissionParams(probs)

    def log_prior(self, params):
        return dc.categorical_log_prior(params.probs, self.n_categories, self._pseudo())

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

    def validate(self, x, lengths):
        return _validate_steps(lambda a, name: checks.as_category_array(a, self.n_categories, name),
                               x, lengths)

    def validate_params(self, params, k, d):
        shape = (k, len(self.n_categories), max(self.n_categories))
        _check_shape(CategoricalEmissionParams(*params), "probs", shape, "categorical")

    def n_free_parameters(self, params):
        return int(np.shape(params.probs)[0]) * sum(c - 1 for c in self.n_categories)

    def work_per_step(self, k, d):
        return d * max(self.n_categories) + 2 * k


@dataclasses.dataclass(frozen=True)
class PoissonEmission(_DiscreteEmission):
    """Independent Poisson counts per feature."""

    regularization: str = "prior"

    def log_density(self, params, x):
        return dc.poisson_log_density(x, params.rates)

    def stats(self, params, x, resp):
        return dc.poisson_stats(x, resp)

    def m_step(self, stats, params):
        counts, sums = stats
        if self.regularization == "prior":
            return PoissonEmissionParams(dc.poisson_update(counts, sums, PSEUDO_COUNT, PSEUDO_COUNT))
        safe = jnp.where(counts > 0, counts, 1)[:, None]
        return PoissonEmissionParams(jnp.where(counts[:, None] > 0, sums / safe, params.rates))

    def log_prior(self, params):
        if self.regularization != "prior":
            return jnp.zeros((), params.rates.dtype)
        return dc.poisson_log_prior(params.rates, PSEUDO_COUNT, PSEUDO_COUNT)

    def is_degenerate(self, params):
        return ~jnp.all(params.rates >= 0)

    def init(self, key, x, weights, k):
        counts, sums = dc.poisson_stats(x, _kmeans_responsibilities(key, x, weights, k))
        return PoissonEmissionParams(dc.poisson_update(counts, sums, INIT_PSEUDO_COUNT, INIT_PSEUDO_COUNT))

    def sample(self, key, params, states):
        rates = jnp.asarray(params.rates)
        return jax.random.poisson(key, rates[states]).astype(rates.dtype)

    def validate(self, x, lengths):
        return _validate_steps(checks.as_count_array, x, lengths)

    def validate_params(self, params, k, d):
        _check_shape(PoissonEmissionParams(*params), "rates", (k, d), "Poisson")

    def n_free_parameters(self, params):
        return int(np.size(params.rates))

    def work_per_step(self, k, d):
        return 2 * d + 3 * k + 8 * k * d  # the density's temporaries per (state, feature)


@dataclasses.dataclass(frozen=True)
class BernoulliEmission(_DiscreteEmission):
    """Independent binary features."""

    regularization: str = "prior"

    def _pseudo(self):
        return PSEUDO_COUNT if self.regularization == "prior" else 0.0

    def log_density(self, params, x):
        return dc.bernoulli_log_density(x, params.probs)

    def stats(self, params, x, resp):
        return dc.bernoulli_stats(x, resp)

    def m_step(self, stats, params):
        probs = dc.bernoulli_update(*stats, self._pseudo())
        if self._pseudo() == 0:  # maximum likelihood: a state with no weight keeps its probabilities
            probs = jnp.where(stats[0][:, None] > 0, probs, params.probs)
        return BernoulliEmissionParams(probs)

    def log_prior(self, params):
        return dc.bernoulli_log_prior(params.probs, self._pseudo())

    def is_degenerate(self, params):
        return ~jnp.all((params.probs >= 0) & (params.probs <= 1))

    def init(self, key, x, weights, k):
        stats = dc.bernoulli_stats(x, _kmeans_responsibilities(key, x, weights, k))
        return BernoulliEmissionParams(dc.bernoulli_update(*stats, INIT_PSEUDO_COUNT))

    def sample(self, key, params, states):
        probs = jnp.asarray(params.probs)
        return jax.random.bernoulli(key, probs[states]).astype(probs.dtype)

    def validate(self, x, lengths):
        return _validate_steps(checks.as_binary_array, x, lengths)

    def validate_params(self, params, k, d):
        _check_shape(BernoulliEmissionParams(*params), "probs", (k, d), "Bernoulli")

    def n_free_parameters(self, params):
        return int(np.size(params.probs))

    def work_per_step(self, k, d):
        return 3 * d + 3 * k
