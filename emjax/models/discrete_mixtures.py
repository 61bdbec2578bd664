r"""Mixtures of discrete distributions: Bernoulli, categorical, multinomial and Poisson.

.. math::
    p(x \mid \theta) = \sum_{k=1}^K \pi_k \, p(x \mid \phi_k),

with :math:`p(x \mid \phi_k)` one of the families of :mod:`emjax.components.discrete`. The fit is
MAP-EM with conjugate priors of ``pseudo_count = a`` extra observations: a symmetric
Dirichlet(1 + a) on the weights, so :math:`\pi_k = (N_k + a)/(N + Ka)`, and per component a
Dirichlet(1 + a) (categorical, multinomial), Beta(1 + a, 1 + a) (Bernoulli) or Gamma(1 + a, a)
(Poisson rates; an empty component's rate is 1). The monitored objective (log-likelihood + log
prior) therefore never decreases, and with ``a > 0`` no probability reaches 0 or 1.

A restart starts from ``K`` rows drawn with probability proportional to their weight: component
``k``'s statistics are those of seed row ``k`` plus the data's average row (one observation each),
so every component begins halfway between one data point and the overall mean.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from ..chunking import choose_chunk_size, chunked_sum
from ..components import discrete as dc
from ..discrete_validation import as_binary_array, as_category_array, as_count_array
from ..model import Model
from . import seeding

#: Default pseudo-count ``a`` (in observations) of every prior.
PSEUDO_COUNT = 1e-3


class BernoulliMixtureParams(NamedTuple):
    """weights ``(k,)``, probs ``(k, d)``: probability of a 1 per component and feature."""

    weights: jnp.ndarray
    probs: jnp.ndarray


class CategoricalMixtureParams(NamedTuple):
    """weights ``(k,)``, probs ``(k, f, c_max)``: ``probs[k, j, c]`` = P(feature j = c | k),
    zero for ``c >= n_categories[j]``."""

    weights: jnp.ndarray
    probs: jnp.ndarray


class MultinomialMixtureParams(NamedTuple):
    """weights ``(k,)``, probs ``(k, v)``: outcome probabilities per component."""

    weights: jnp.ndarray
    probs: jnp.ndarray


class PoissonMixtureParams(NamedTuple):
    """weights ``(k,)``, rates ``(k, d)``: Poisson means per component and feature."""

    weights: jnp.ndarray
    rates: jnp.ndarray


class _DiscreteMixture(Model):
    """Weights + one discrete component family; subclasses set ``params_type`` and supply the
    family's hooks below."""

    def __post_init__(self):
        k = self.n_components
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_components must be a positive integer; got {k!r}.")
        a = self.pseudo_count
        if not isinstance(a, numbers.Real) or not np.isfinite(a) or a < 0:
            raise ValueError(f"pseudo_count must be a finite number >= 0; got {a!r}.")

    # ----------------------------------------------------------------- family hooks
    def _log_density(self, emission, x):
        raise NotImplementedError

    def _stats(self, x, resp):
        raise NotImplementedError

    def _update(self, stats):
        raise NotImplementedError

    def _emission_log_prior(self, emission):
        raise NotImplementedError

    def _emission_shape(self, data) -> tuple:
        raise NotImplementedError

    # ----------------------------------------------------------------- densities and inference
    def _weighted_log_density(self, params, x):
        return self._log_density(params[1], x) + jnp.log(params.weights)[:, None]  # (k, n)

    def log_prob(self, params, x):
        """:math:`\\log p(x_n)`, shape ``(n,)``."""
        return logsumexp(self._weighted_log_density(params, x), axis=0)

    def posterior(self, params, x):
        """Responsibilities :math:`p(z_n = k \\mid x_n)`, shape ``(n, k)``."""
        return jax.nn.softmax(self._weighted_log_density(params, x), axis=0).T

    def predict(self, params, x):
        """Most probable component per row, shape ``(n,)``."""
        return jnp.argmax(self._weighted_log_density(params, x), axis=0)

    def n_free_parameters(self, params) -> int:
        per_component = int(np.prod(np.shape(params[1])[1:])) - self._constraints_per_component()
        return (self.n_components - 1) + self.n_components * per_component

    def _constraints_per_component(self) -> int:
        return 0

    # ----------------------------------------------------------------- EM contract
    def e_step(self, params, x, weights):
        lp = self._weighted_log_density(params, x)
        row_ll = logsumexp(lp, axis=0)
        keep = weights > 0
        resp = jnp.where(keep, jnp.exp(lp - row_ll) * weights, 0)
        loglik = jnp.sum(jnp.where(keep, weights * row_ll, 0))
        return (jnp.sum(resp, axis=1), self._stats(x, resp)), loglik

    def m_step(self, stats, params):
        counts, emission_stats = stats
        weights = dc.dirichlet_map(counts, self.pseudo_count)
        return self.params_type(weights, self._update(emission_stats))

    def log_prior(self, params):
        return dc.dirichlet_log_prior(params.weights, self.pseudo_count) + \
            self._emission_log_prior(params[1])

    def is_degenerate(self, params):
        return ~jnp.all(params.weights > 0)

    def init(self, key, x, weights):
        k, n = self.n_components, weights.shape[0]
        seeds = seeding.random_rows(key, x, weights, k)
        resp_seeds = jnp.eye(k, dtype=weights.dtype)
        total = jnp.sum(weights)

        def average_row(rows, w):  # every component gets the data's mean row, total weight 1
            return self._stats(rows, jnp.broadcast_to(w / total, (k, w.shape[0])))

        chunk = choose_chunk_size(n, self.work_per_row(x))
        mean_stats = chunked_sum(average_row, x, weights, chunk)
        stats = jax.tree_util.tree_map(jnp.add, self._stats(seeds, resp_seeds), mean_stats)
        return self.params_type(jnp.full((k,), 1 / k, weights.dtype), self._update(stats))

    # ----------------------------------------------------------------- host-side checks
    def validate_weights(self, weights):
        positive = int(np.sum(np.asarray(weights) > 0))
        if positive < self.n_components:
            raise ValueError(f"n_samples={positive} (rows with positive weight) must be >= "
                             f"n_components={self.n_components}.")

    def validate_params(self, params, data):
        names = self.params_type._fields
        if not isinstance(params, tuple) or len(params) != 2:
            raise TypeError(f"params must be {self.params_type.__name__}{names}; got "
                            f"{type(params).__name__}.")
        expected = ((self.n_components,), (self.n_components, *self._emission_shape(data)))
        for name, value, shape in zip(names, params, expected):
            if tuple(np.shape(value)) != shape:
                raise ValueError(f"params.{name} must have shape {shape} for n_components="
                                 f"{self.n_components} and data of shape {tuple(data.shape)}; got "
                                 f"{tuple(np.shape(value))}.")

    def work_per_row(self, data) -> int:
        return 4 * self.n_components + 2 * int(np.prod(self._emission_shape(data)))


@dataclasses.dataclass(frozen=True)
class BernoulliMixture(_DiscreteMixture):
    """A mixture of ``n_components`` products of Bernoullis over binary vectors ``(n, d)``.

    Args:
        n_components: number of components ``K``.
        pseudo_count: ``a`` of the Dirichlet(1 + a) weights prior and the Beta(1 + a, 1 + a)
            prior of every probability.
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
class PoissonMixture(_DiscreteMixture):
    """A mixture of ``n_components`` products of Poissons over count vectors ``(n, d)``.

    Args:
        n_components: number of components ``K``.
        pseudo_count: ``a > 0`` of the Dirichlet(1 + a) weights prior and the Gamma(1 + a, a)
            (shape, rate) prior of every rate.
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

    def validate(self, data):
        return as_count_array(data, "data")


@dataclasses.dataclass(frozen=True)
class MultinomialMixture(_DiscreteMixture):
    """A mixture of ``n_components`` multinomials over count vectors ``(n, v)`` (e.g. documents
    as word counts; each row's total is given, not modelled). An all-zero row is valid and has
    log-probability 0.

    Args:
        n_components: number of components ``K``.
        pseudo_count: ``a`` of the Dirichlet(1 + a) priors on the weights and every component.
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
class CategoricalMixture(_DiscreteMixture):
    """Latent class analysis: ``n_components`` classes, each a product of categoricals over the
    features of ``x`` int ``(n, f)``, feature ``j`` taking values ``0..n_categories[j]-1`` or -1
    for a missing value (it contributes nothing).

    Args:
        n_components: number of classes ``K``.
        n_categories: categories of each feature, e.g. ``(3, 2, 5)``.
        pseudo_count: ``a`` of the Dirichlet(1 + a) priors on the weights and every table row.
    """

    n_components: int
    n_categories: tuple
    pseudo_count: float = PSEUDO_COUNT
    params_type = CategoricalMixtureParams

    def __post_init__(self):
        super().__post_init__()
        cats = self.n_categories
        if not isinstance(cats, tuple) or not cats or not all(
                isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 1 for c in cats):
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
