r"""A discrete-latent model from a user's log joint density, its latent state enumerated.

For a user function :math:`\ell(\theta, x, z) = \log p(x, z \mid \theta)` of one row ``x`` and a
state :math:`z \in \{0, \dots, K-1\}`, the model is :math:`p(x \mid \theta) = \sum_z e^{\ell(\theta, x, z)}`.
The E-step enumerates the ``K`` states of every row:
:math:`r_{iz} = \operatorname{softmax}_z \ell(\theta_t, x_i, z)`; the M-step is generalized EM
(:func:`emjax.components.gem.gem_ascent`): a few optax steps uphill on

.. math::
    Q(\theta; \theta_t) = \sum_i w_i \sum_z r_{iz} \, \ell(\theta, x_i, z) + \log p(\theta),

evaluated over row chunks, so the objective never falls. Mixture weights, component parameters
and any network inside :math:`\ell` are all just entries of the params pytree.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import optax
from jax.scipy.special import logsumexp

from ..core.chunking import choose_chunk_size, chunked_sum, n_rows
from ..components.gem import gem_ascent
from ..core.model import Model
from ..core.validation import as_float_array, check_finite


@dataclasses.dataclass(frozen=True)
class EnumeratedMixture(Model):
    """A latent-class model given by ``log_joint(params, row, z)``.

    Args:
        log_joint: ``(params, row, z) -> scalar`` log density of one row (a pytree of arrays
            without the row axis) jointly with the integer state ``z``; differentiable in params.
        init_fn: ``(key, data, weights) -> params``, a starting point for one restart.
        n_states: number of latent states ``K``.
        optimizer: optax transformation of the M-step (its state restarts every iteration).
        n_steps: optimizer steps per EM iteration.
        log_prior_fn: optional ``params -> scalar`` log prior density (MAP-EM).

    The functions are compared by identity: create the model once and reuse it, so that equal
    shapes reuse one compiled program. Data may be an array or a pytree of arrays sharing the
    row axis (e.g. ``(inputs, targets)``).

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np, optax, emjax
        >>> from jax.scipy.special import gammaln
        >>> def log_joint(params, x, z):                       # a Poisson mixture: log p(x, z)
        ...     rate = jnp.exp(params["log_rates"][z])
        ...     log_weight = jax.nn.log_softmax(params["logits"])[z]
        ...     return log_weight + x * jnp.log(rate) - rate - gammaln(x + 1)
        >>> init = lambda key, x, w: {"logits": jnp.zeros(2), "log_rates": jnp.array([0.0, 2.0])}
        >>> model = emjax.EnumeratedMixture(log_joint, init, n_states=2, optimizer=optax.adam(0.1))
        >>> rng = np.random.default_rng(0)
        >>> counts = rng.poisson([2.0, 9.0], size=(100, 2)).ravel().astype(np.float32)
        >>> res = emjax.fit(model, counts, jax.random.key(0), max_iter=200, tol=1e-6)
        >>> rates = jnp.sort(jnp.exp(res.params["log_rates"]))
        >>> bool(jnp.all(jnp.abs(rates - jnp.array([2.0, 9.0])) < 1.5))
        True
    """

    log_joint: Callable
    init_fn: Callable
    n_states: int
    optimizer: Any = optax.adam(1e-2)
    n_steps: int = 20
    log_prior_fn: Optional[Callable] = None

    def __post_init__(self):
        for name in ("n_states", "n_steps"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        for name in ("log_joint", "init_fn"):
            if not callable(getattr(self, name)):
                raise ValueError(f"{name} must be callable; got {getattr(self, name)!r}.")

    def _log_joint_table(self, params, data):
        """:math:`\\ell(\\theta, x_i, z)` for every row and state, shape ``(n, K)``."""
        states = jnp.arange(self.n_states)
        per_row = lambda row: jax.vmap(lambda z: self.log_joint(params, row, z))(states)
        return jax.vmap(per_row)(data)

    def log_prob(self, params, data):
        """:math:`\\log p(x_i)`, shape ``(n,)``."""
        return logsumexp(self._log_joint_table(params, data), axis=1)

    def posterior(self, params, data):
        """:math:`p(z_i = z \\mid x_i)`, shape ``(n, K)``."""
        return jax.nn.softmax(self._log_joint_table(params, data), axis=1)

    def log_prior(self, params):
        if self.log_prior_fn is None:
            return super().log_prior(params)
        return self.log_prior_fn(params)

    def init(self, key, data, weights):
        return self.init_fn(key, data, weights)

    def e_step(self, params, data, weights):
        """No closed-form statistics (``()``); the summed log-likelihood."""
        row_ll = self.log_prob(params, data)
        return (), jnp.sum(jnp.where(weights > 0, weights * row_ll, 0))

    def expected_log_joint(self, params, old_params, data, weights):
        """:math:`Q(\\theta; \\theta_t)` including the log prior, summed over row chunks."""
        def rows(x, w):
            resp = self.posterior(old_params, x) * w[:, None]
            table = self._log_joint_table(params, x)
            return jnp.sum(jnp.where(resp > 0, resp * table, 0))

        chunk = choose_chunk_size(n_rows(data), self.work_per_row(data))
        return chunked_sum(rows, data, weights, chunk) + self.log_prior(params)

    def m_step(self, stats, params):
        """Not available alone: this M-step ascends a function of the rows (:meth:`m_step_with_data`,
        which the engine calls)."""
        raise TypeError("EnumeratedMixture's M-step needs the rows: call m_step_with_data(stats, "
                        "params, data, weights).")

    def m_step_with_data(self, stats, params, data, weights):
        objective = lambda new: self.expected_log_joint(new, params, data, weights)
        return gem_ascent(objective, params, self.optimizer, self.n_steps)

    def n_free_parameters(self, params) -> int:
        """Every scalar in ``params`` (override when some are constrained)."""
        return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(params))

    def work_per_row(self, data) -> int:
        features = sum(math.prod(x.shape[1:]) for x in jax.tree_util.tree_leaves(data))
        return 4 * self.n_states * max(1, features)

    def validate(self, data):
        leaves, treedef = jax.tree_util.tree_flatten(data)
        names = [f"data leaf {i}" if len(leaves) > 1 else "data" for i in range(len(leaves))]
        leaves = [as_float_array(x, name) for x, name in zip(leaves, names)]
        for x, name in zip(leaves, names):
            if x.ndim < 1 or x.shape[0] == 0:
                raise ValueError(f"{name} must have a leading row axis with at least one row; "
                                 f"got shape {tuple(x.shape)}.")
            if x.shape[0] != leaves[0].shape[0]:
                raise ValueError(f"{name} has {x.shape[0]} rows but data leaf 0 has "
                                 f"{leaves[0].shape[0]}; every leaf needs the same row axis.")
            check_finite(x, name)
        return jax.tree_util.tree_unflatten(treedef, leaves)
