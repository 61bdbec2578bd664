r"""Mixtures of discrete distributions: Bernoulli, categorical, multinomial and Poisson.

.. math::
    p(x \mid \theta) = \sum_{k=1}^K \pi_k \, p(x \mid \phi_k),

with :math:`p(x \mid \phi_k)` one of the families of :mod:`emjax.components.discrete`. The fit is
MAP-EM with conjugate priors of ``pseudo_count = a`` extra observations: a symmetric
Dirichlet(1 + a) on the weights, so :math:`\pi_k = (N_k + a)/(N + Ka)`, and per component a
Dirichlet(1 + a) (categorical, multinomial), Beta(1 + a, 1 + a) (Bernoulli) or Gamma(1 + a, a)
(Poisson rates; an empty component's rate is 1). The monitored objective (log-likelihood + log
prior) therefore never decreases, and with ``a > 0`` no probability reaches 0 or 1.

Each is :class:`~emjax.models.mixture.EmissionMixture` (the generic mixture, written once)
over an emission of :mod:`emjax.components.emissions_discrete` with the same ``pseudo_count``,
with flat parameters ``(weights, probs | rates)`` and the ``"rows_and_mean"`` start.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax.numpy as jnp

from ..components import PSEUDO_COUNT
from ..components.emissions_counts import MultinomialEmission, PoissonEmission
from ..components.emissions_discrete import BernoulliEmission, CategoricalEmission
from .mixture import EmissionMixture


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
class BernoulliMixture(EmissionMixture):
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
    start = "rows_and_mean"

    @property
    def emission_model(self) -> BernoulliEmission:
        return BernoulliEmission(self.pseudo_count)


@dataclasses.dataclass(frozen=True)
class PoissonMixture(EmissionMixture):
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
    start = "rows_and_mean"

    def __post_init__(self):
        super().__post_init__()
        if self.pseudo_count <= 0:
            raise ValueError("pseudo_count must be > 0 for PoissonMixture (the Gamma prior's rate "
                             f"keeps an empty component finite); got {self.pseudo_count!r}.")

    @property
    def emission_model(self) -> PoissonEmission:
        return PoissonEmission(self.pseudo_count)


@dataclasses.dataclass(frozen=True)
class MultinomialMixture(EmissionMixture):
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
    start = "rows_and_mean"

    @property
    def emission_model(self) -> MultinomialEmission:
        return MultinomialEmission(self.pseudo_count)


@dataclasses.dataclass(frozen=True)
class CategoricalMixture(EmissionMixture):
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
    start = "rows_and_mean"

    @property
    def emission_model(self) -> CategoricalEmission:
        return CategoricalEmission(self.n_categories, self.pseudo_count)

    def n_free_parameters(self, params=None) -> int:
        """``(K - 1) + K sum_j (c_j - 1)`` (the parameters are not read)."""
        k = self.n_components
        return (k - 1) + k * sum(c - 1 for c in self.n_categories)
