r"""The part every mixture of discrete distributions shares: weights, inference, EM, checks.

.. math::
    p(x \mid \theta) = \sum_{k=1}^K \pi_k \, p(x \mid \phi_k),

with :math:`p(x \mid \phi_k)` a family of :mod:`emjax.components.discrete` that a subclass
names. The weights get a symmetric Dirichlet(1 + a) prior (``a = pseudo_count``), so the M-step
sets :math:`\pi_k = (N_k + a)/(N + Ka)`, and the monitored objective adds its log density.

A restart starts from ``K`` rows drawn with probability proportional to their weight: component
``k``'s statistics are those of seed row ``k`` plus the data's average row (one observation each),
so every component begins halfway between one data point and the overall mean.
"""
from __future__ import annotations

import abc

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from ..core.chunking import choose_chunk_size, chunked_sum
from ..components import discrete as dc
from ..core.model import Model
from ..core.validation import (
    check_enough_rows, check_nonnegative_number, check_param_shape, check_positive_int,
    check_probabilities, checked_post_fit_data,
)
from . import seeding


class DiscreteMixture(Model, abc.ABC):
    """Weights + one discrete component family.

    Subclasses are frozen dataclasses with fields ``n_components`` and ``pseudo_count``; they set
    ``params_type`` (a NamedTuple ``(weights, emission)``) and supply the family's hooks below.
    """

    def __post_init__(self):
        check_positive_int(self.n_components, "n_components")
        check_nonnegative_number(self.pseudo_count, "pseudo_count")

    # ----------------------------------------------------------------- family hooks
    @abc.abstractmethod
    def _log_density(self, emission, x):
        """``log p(x_n | component k)``, shape ``(k, n)``."""

    @abc.abstractmethod
    def _stats(self, x, resp):
        """The family's statistics of rows ``x`` under weighted responsibilities ``resp (k, n)``."""

    @abc.abstractmethod
    def _update(self, stats):
        """MAP emission parameters from summed statistics."""

    @abc.abstractmethod
    def _emission_log_prior(self, emission):
        """Log prior of the emission parameters (matches ``_update``'s MAP)."""

    @abc.abstractmethod
    def _emission_shape(self, data) -> tuple:
        """Shapes of the emission parameters for ``data`` (host-side parameter checks)."""

    # ----------------------------------------------------------------- densities and inference
    def _weighted_log_density(self, params, x):
        return self._log_density(params[1], x) + jnp.log(params.weights)[:, None]  # (k, n)

    def log_prob(self, params, x):
        """:math:`\\log p(x_n)`, shape ``(n,)``. Concrete ``x`` and ``params`` are checked as in
        :func:`emjax.fit` (this holds for :meth:`posterior` and :meth:`predict` too)."""
        x = checked_post_fit_data(self, params, x)
        return logsumexp(self._weighted_log_density(params, x), axis=0)

    def posterior(self, params, x):
        """Responsibilities :math:`p(z_n = k \\mid x_n)`, shape ``(n, k)``."""
        x = checked_post_fit_data(self, params, x)
        return jax.nn.softmax(self._weighted_log_density(params, x), axis=0).T

    def predict(self, params, x):
        """Most probable component per row, shape ``(n,)``."""
        x = checked_post_fit_data(self, params, x)
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
        check_enough_rows(weights, self.n_components)

    def validate_params(self, params, data):
        names = self.params_type._fields
        if not isinstance(params, tuple) or len(params) != 2:
            raise TypeError(f"params must be {self.params_type.__name__}{names}; got "
                            f"{type(params).__name__}.")
        expected = ((self.n_components,), (self.n_components, *self._emission_shape(data)))
        context = f"n_components={self.n_components} and data of shape {tuple(data.shape)}"
        for name, value, shape in zip(names, params, expected):
            check_param_shape(value, shape, f"params.{name}", context,
                              features_last=name != "weights" and len(shape) == 2)
        check_probabilities(params[0], f"params.{names[0]}")
        check_probabilities(params[1], f"params.{names[1]}", normalized=False)

    def work_per_row(self, data) -> int:
        return 4 * self.n_components + 2 * int(np.prod(self._emission_shape(data)))
