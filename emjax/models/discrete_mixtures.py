r"""Mixtures of discrete distributions: Bernoulli, categorical, multinomial and Poisson.

.. math::
    p(x \mid \theta) = \sum_{k=1}^K \pi_k \, p(x \mid \phi_k),

with :math:`p(x \mid \phi_k)` one of the families of :mod:`emjax.components.discrete`. The fit is
MAP-EM with conjugate priors of ``pseudo_count = a`` extra observations: a symmetric
Dirichlet(1 + a) on the weights, so :math:`\pi_k = (N_k + a)/(N + Ka)`, and per component a
Dirichlet(1 + a) (categorical, multinomial), Beta(1 + a, 1 + a) (Bernoulli) or Gamma(1 + a, a)
(Poisson rates; an empty component's rate is 1). The monitored objective (log-likelihood + log
prior) therefore never decreases, and with ``a > 0`` no probability reaches 0 or 1.

The shared machinery (weights, inference, EM, initialisation, checks) is
:class:`~emjax.models.discrete_mixture_base.DiscreteMixture`.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax.numpy as jnp

from ..components import discrete as dc
from ..components import PSEUDO_COUNT
from ..core.discrete_validation import as_binary_array, as_category_array, as_count_array
from ..core.validation import is_positive_int
from .discrete_mixture_base import DiscreteMixture


class BernoulliMixtureParams(NamedTuple):
    """weights ``(k,)``, probs ``(k, d)``: probability of a 1 per component and feature.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> params = emjax.BernoulliMixtureParams(weights=jnp.array([0.5, 0.5]),
        ...                                       probs=jnp.array([[0.9, 0.9], [0.1, 0.1]]))
        >>> emjax.BernoulliMixture(2).predict(params, jnp.array([[1.0, 1.0], [0.0, 0.0]])).tolist()
        [0, 1]
    """

    weights: jnp.ndarray
    probs: jnp.ndarray


class CategoricalMixtureParams(NamedTuple):
    """weights ``(k,)``, probs ``(k, f, c_max)``: ``probs[k, j, c]`` = P(feature j = c | k),
    zero for ``c >= n_categories[j]``.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> params = emjax.CategoricalMixtureParams(
        ...     weights=jnp.array([0.5, 0.5]),
        ...     probs=jnp.array([[[0.8, 0.1, 0.1]], [[0.1, 0.1, 0.8]]]))        # (k, features, categories)
        >>> model = emjax.CategoricalMixture(2, n_categories=(3,))
        >>> model.predict(params, jnp.array([[0], [2]])).tolist()
        [0, 1]
    """

    weights: jnp.ndarray
    probs: jnp.ndarray


class MultinomialMixtureParams(NamedTuple):
    """weights ``(k,)``, probs ``(k, v)``: outcome probabilities per component.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> params = emjax.MultinomialMixtureParams(weights=jnp.array([0.5, 0.5]),
        ...                                         probs=jnp.array([[0.8, 0.2], [0.2, 0.8]]))
        >>> emjax.MultinomialMixture(2).predict(params, jnp.array([[9, 1], [1, 9]])).tolist()
        [0, 1]
    """

    weights: jnp.ndarray
    probs: jnp.ndarray


class PoissonMixtureParams(NamedTuple):
    """weights ``(k,)``, rates ``(k, d)``: Poisson means per component and feature.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> params = emjax.PoissonMixtureParams(weights=jnp.array([0.5, 0.5]),
        ...                                     rates=jnp.array([[1.0], [10.0]]))
        >>> emjax.PoissonMixture(2).predict(params, jnp.array([[0], [12]])).tolist()
        [0, 1]
    """

    weights: jnp.ndarray
    rates: jnp.ndarray


@dataclasses.dataclass(frozen=True)
class BernoulliMixture(DiscreteMixture):
    """A mixture of ``n_components`` products of Bernoullis over binary vectors ``(n, d)``.

    Args:
        n_components: number of components ``K``.
        pseudo_count: ``a`` of the Dirichlet(1 + a) weights prior and the Beta(1 + a, 1 + a)
            prior of every probability.

    Examples:
        >>> import jax, numpy as np, emjax
        >>> rng = np.random.default_rng(0)
        >>> binary = (rng.uniform(size=(200, 6)) < [0.9, 0.9, 0.9, 0.1, 0.1, 0.1]).astype(np.float32)
        >>> res = emjax.fit(emjax.BernoulliMixture(2), binary, jax.random.key(0), n_init=2)
        >>> res.params.weights.shape, res.params.probs.shape
        ((2,), (2, 6))
    """

    n_components: int
    pseudo_count: float = PSEUDO_COUNT
    params_type = BernoulliMixtureParams

    def _log_density(self, probs, x):
        return dc.bernoulli_log_density(x, probs)

    def _stats(self, x, resp):
        return dc.bernoulli_stats(x, resp)

    def _update(self, stats):
        return dc.bernoulli_update(*stats, self.pseudo_count)

    def _emission_log_prior(self, probs):
        return dc.bernoulli_log_prior(probs, self.pseudo_count)

    def _emission_shape(self, data):
        return (data.shape[1],)

    def validate(self, data):
        return as_binary_array(data, "data")


@dataclasses.dataclass(frozen=True)
class PoissonMixture(DiscreteMixture):
    """A mixture of ``n_components`` products of Poissons over count vectors ``(n, d)``.

    Args:
        n_components: number of components ``K``.
        pseudo_count: ``a > 0`` of the Dirichlet(1 + a) weights prior and the Gamma(1 + a, a)
            (shape, rate) prior of every rate.

    Examples:
        >>> import jax, numpy as np, emjax
        >>> rng = np.random.default_rng(0)
        >>> counts = np.concatenate([rng.poisson(2.0, (300, 1)), rng.poisson(20.0, (300, 1))])
        >>> res = emjax.fit(emjax.PoissonMixture(2), counts, jax.random.key(0), n_init=4)
        >>> sorted(round(float(r)) for r in res.params.rates[:, 0])
        [2, 20]
    """

    n_components: int
    pseudo_count: float = PSEUDO_COUNT
    params_type = PoissonMixtureParams

    def __post_init__(self):
        super().__post_init__()
        if self.pseudo_count <= 0:
            raise ValueError("pseudo_count must be > 0 for PoissonMixture (the Gamma prior's rate "
                             f"keeps an empty component finite); got {self.pseudo_count!r}.")

    def _log_density(self, rates, x):
        return dc.poisson_log_density(x, rates)

    def _stats(self, x, resp):
        return dc.poisson_stats(x, resp)

    def _update(self, stats):
        return dc.poisson_update(*stats, self.pseudo_count, self.pseudo_count)

    def _emission_log_prior(self, rates):
        return dc.poisson_log_prior(rates, self.pseudo_count, self.pseudo_count)

    def _emission_shape(self, data):
        return (data.shape[1],)

    def work_per_row(self, data) -> int:
        """The cancellation-safe density (:func:`emjax.components.discrete.poisson_log_density`)
        holds about 8 temporaries per (component, feature) of a row."""
        return super().work_per_row(data) + 8 * self.n_components * data.shape[1]

    def validate(self, data):
        return as_count_array(data, "data")


@dataclasses.dataclass(frozen=True)
class MultinomialMixture(DiscreteMixture):
    """A mixture of ``n_components`` multinomials over count vectors ``(n, v)`` (e.g. documents
    as word counts; each row's total is given, not modelled). An all-zero row is valid and has
    log-probability 0.

    Args:
        n_components: number of components ``K``.
        pseudo_count: ``a`` of the Dirichlet(1 + a) priors on the weights and every component.

    Examples:
        >>> import jax, numpy as np, emjax
        >>> counts = np.random.default_rng(0).poisson(4.0, size=(200, 5))    # count vectors
        >>> res = emjax.fit(emjax.MultinomialMixture(2), counts, jax.random.key(0), n_init=2)
        >>> res.params.probs.sum(axis=1).round(3).tolist()      # outcome probabilities per component
        [1.0, 1.0]
    """

    n_components: int
    pseudo_count: float = PSEUDO_COUNT
    params_type = MultinomialMixtureParams

    def _log_density(self, probs, x):
        return dc.multinomial_log_density(x, probs)

    def _stats(self, x, resp):
        return dc.multinomial_stats(x, resp)

    def _update(self, sums):
        return dc.multinomial_update(sums, self.pseudo_count)

    def _emission_log_prior(self, probs):
        return dc.multinomial_log_prior(probs, self.pseudo_count)

    def _emission_shape(self, data):
        return (data.shape[1],)

    def _constraints_per_component(self):
        return 1

    def validate(self, data):
        return as_count_array(data, "data")


@dataclasses.dataclass(frozen=True)
class CategoricalMixture(DiscreteMixture):
    """Latent class analysis: ``n_components`` classes, each a product of categoricals over the
    features of ``x`` int ``(n, f)``, feature ``j`` taking values ``0..n_categories[j]-1`` or -1
    for a missing value (it contributes nothing).

    Args:
        n_components: number of classes ``K``.
        n_categories: categories of each feature, e.g. ``(3, 2, 5)``.
        pseudo_count: ``a`` of the Dirichlet(1 + a) priors on the weights and every table row.

    Examples:
        >>> import jax, numpy as np, emjax
        >>> codes = np.random.default_rng(0).integers(3, size=(200, 2))   # 2 features, 3 values
        >>> codes[0, 1] = -1                                   # -1: missing
        >>> model = emjax.CategoricalMixture(2, n_categories=(3, 3))
        >>> res = emjax.fit(model, codes, jax.random.key(0), n_init=2)
        >>> res.params.probs.shape                             # (k, features, categories)
        (2, 2, 3)
    """

    n_components: int
    n_categories: tuple
    pseudo_count: float = PSEUDO_COUNT
    params_type = CategoricalMixtureParams

    def __post_init__(self):
        super().__post_init__()
        cats = self.n_categories
        if not isinstance(cats, tuple) or not cats or not all(is_positive_int(c) for c in cats):
            raise ValueError("n_categories must be a non-empty tuple of positive integers (one per "
                             f"feature); got {cats!r}.")

    def _log_density(self, probs, x):
        return dc.categorical_log_density(x, probs)

    def _stats(self, x, resp):
        return dc.categorical_stats(x, resp, max(self.n_categories))

    def _update(self, counts):
        return dc.categorical_update(counts, self.n_categories, self.pseudo_count)

    def _emission_log_prior(self, probs):
        return dc.categorical_log_prior(probs, self.n_categories, self.pseudo_count)

    def _emission_shape(self, data):
        return (len(self.n_categories), max(self.n_categories))

    def n_free_parameters(self, params) -> int:
        k = self.n_components
        return (k - 1) + k * sum(c - 1 for c in self.n_categories)

    def validate(self, data):
        return as_category_array(data, self.n_categories, "data")
