"""The model contract: what every latent-variable model gives the EM engine.

A model is a frozen, hashable dataclass of static configuration. Its methods are pure functions of
arrays, written for ONE dataset and ONE restart; the engine batches them with ``jax.vmap``.

Required::

    init(key, data, weights) -> params                   random starting point for one restart
    e_step(params, data, weights) -> (stats, loglik)      stats: pytree of sums over observations
    m_step(stats, params) -> params                       argmax of E[log p(x, z)] + log_prior
    log_prob(params, data) -> (n,)                        marginal log-likelihood per observation
    posterior(params, data) -> (n, ...)                   posterior of the latent variables

Optional (defaults below): ``log_prior``, ``is_degenerate``, ``validate``, ``validate_params``,
``work_per_row``, ``m_step_with_data`` (an M-step that revisits the rows, e.g. generalized EM)
and the standardisation hooks ``standardize`` / ``params_to_standard`` /
``params_from_standard``. Because statistics are sums, the engine can chunk, shard, weight and pad
the data without the model knowing.

A model may also be a JAX pytree (``jax.tree_util.register_dataclass``): its array leaves are
continuous hyperparameters (a prior strength, a fixed parameter) that the engine traces, so they
can be ``vmap``-ed over and differentiated (:mod:`emjax.implicit`); its other fields stay static.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .tree import float_dtype

PyTree = Any


class Model:
    """Base class with the defaults of the optional parts of the contract."""

    def log_prior(self, params: PyTree) -> jnp.ndarray:
        """Log prior density of ``params`` up to a constant; the driver monitors loglik + this."""
        return jnp.zeros(())

    def is_degenerate(self, params: PyTree) -> jnp.ndarray:
        """True where ``params`` are finite but unusable (e.g. a covariance that is not PD)."""
        return jnp.zeros((), bool)

    def validate(self, data):
        """Host-side checks and conversion of concrete ``data``; returns the converted data."""
        return data

    def validate_weights(self, weights) -> None:
        """Host-side checks of concrete, already generically checked ``weights``."""

    def validate_params(self, params: PyTree, data) -> None:
        """Host-side check that user-supplied ``params`` fit this model and ``data``."""

    def work_per_row(self, data) -> int:
        """Elements of temporary memory that one observation costs in the E-step (chunk sizing)."""
        return 64

    def standardize(self, data, weights):
        """Returns ``(data', transform, log_jacobian)``: data in the coordinates the fit runs in.

        ``log_jacobian`` is added to the per-sample objective to report it in the user's units.
        """
        return data, None, jnp.zeros((), float_dtype(data))

    def params_to_standard(self, params: PyTree, transform) -> PyTree:
        return params

    def params_from_standard(self, params: PyTree, transform) -> PyTree:
        return params


    def m_step_with_data(self, stats: PyTree, params: PyTree, data, weights) -> PyTree:
        """The M-step as the engine calls it; by default :meth:`m_step`, which sees only ``stats``.

        A model whose M-step must revisit the rows (a generalized-EM step that ascends the
        expected complete log-likelihood of every row, see :mod:`emjax.gem`) overrides this.
        """
        return self.m_step(stats, params)


def split_hyperparameters(model):
    """``(static, hyperparameters)``: a model's hashable structure and its array leaves.

    A model registered as a JAX pytree (e.g. ``jax.tree_util.register_dataclass`` with a prior
    strength among its ``data_fields``) holds continuous hyperparameters that may be traced:
    differentiated, ``vmap``-ed over or changed without recompiling. A plain model is all static.
    """
    leaves, treedef = jax.tree_util.tree_flatten(model)
    if jax.tree_util.treedef_is_leaf(treedef):
        return model, ()
    return treedef, tuple(leaves)


def join_hyperparameters(static, hyperparameters):
    """Inverse of :func:`split_hyperparameters`."""
    if isinstance(static, jax.tree_util.PyTreeDef):
        return jax.tree_util.tree_unflatten(static, hyperparameters)
    return static
