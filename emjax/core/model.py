"""The model contract: what every latent-variable model gives the EM engine.

A model is a frozen, hashable dataclass of static configuration. Its methods are pure functions of
arrays, written for ONE dataset and ONE restart; the engine batches them with ``jax.vmap``.

Required::

    init(key, data, weights) -> params                   random starting point for one restart
    e_step(params, data, weights) -> (stats, loglik)      stats: pytree of sums over observations
    m_step(stats, params) -> params                       argmax of E[log p(x, z)] + log_prior
    log_prob(params, data) -> (n,)                        marginal log-likelihood per observation
    posterior(params, data) -> (n, ...)                   posterior of the latent variables

Optional (defaults below): ``log_prior``, ``is_degenerate``, ``validate``, ``validate_chunk``
(streamed chunks), ``traced_inputs`` (data given under jit/vmap), ``validate_params``,
``loglik_terms`` (a monitored objective other than the log-likelihood, e.g. tempered EM), ``work_per_row``,
``with_formulation`` (the E-step choices of the engine's :class:`emjax.core.plan.Plan`), ``restate_stats`` (online EM),
``m_step_with_data`` (an M-step that revisits the rows, e.g. generalized EM), the
standardisation hooks ``standardize`` / ``params_to_standard`` / ``params_from_standard`` and
the unconstrained coordinates ``to_unconstrained`` / ``from_unconstrained`` in which
accelerators (SQUAREM) extrapolate. Because statistics are sums, the engine can chunk, shard,
weight and pad the data without the model knowing.

Standardisation is written as additive passes over the rows (``transform_passes``,
``transform_stats``, ``transform_from_stats``, ``apply_transform``), so that streamed data (one
chunk at a time) get exactly the transform that in-memory data get; ``standardize`` composes them.
Where ``standardizes_in_chunks`` holds, in-memory fits never copy the data either: the engine
applies the transform to each chunk it reads (:mod:`emjax.engine.raw_rows`), and ``init_from_raw``
starts a restart from rows in the user's units.

A model may also be a JAX pytree (``jax.tree_util.register_dataclass``): its array leaves are
continuous hyperparameters (a prior strength, a fixed parameter) that the engine traces, so they
can be ``vmap``-ed over and differentiated (:mod:`emjax.engine.implicit`); its other fields stay static.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .tree import float_dtype

PyTree = Any


class Model:
    """Base class with the defaults of the optional parts of the contract.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Mean(emjax.Model):                            # one mean, unit variance
        ...     def init(self, key, data, weights):
        ...         return jnp.zeros(data.shape[1:])
        ...     def e_step(self, params, data, weights):
        ...         loglik = -0.5 * jnp.sum(weights * jnp.sum((data - params) ** 2, axis=1))
        ...         return (jnp.sum(weights), weights @ data), loglik
        ...     def m_step(self, stats, params):
        ...         return stats[1] / stats[0]
        >>> res = emjax.fit(Mean(), jnp.array([[1.0], [3.0]]), 0, max_iter=5)
        >>> res.params.tolist()
        [2.0]
    """

    def log_prior(self, params: PyTree) -> jnp.ndarray:
        """Log prior density of ``params`` up to a constant; the driver monitors loglik + this."""
        return jnp.zeros(())

    def is_degenerate(self, params: PyTree) -> jnp.ndarray:
        """True where ``params`` are finite but unusable (e.g. a covariance that is not PD)."""
        return jnp.zeros((), bool)

    def validate(self, data):
        """Host-side checks and conversion of concrete ``data``; returns the converted data."""
        return data

    def validate_chunk(self, data):
        """Host-side checks of one chunk of streamed rows (:func:`emjax.stream_fit`): those of
        :meth:`validate` that hold for any subset of the rows. By default :meth:`validate`."""
        return self.validate(data)

    def traced_inputs(self, data, weights):
        """``(data, weights)`` as the engine iterates on them when ``data`` is traced (inside a
        caller's jit/vmap/grad, where :meth:`validate` cannot run): the identity by default; a
        model whose :meth:`validate` converts the data converts here with traceable operations."""
        return data, weights

    def loglik_terms(self, loglik):
        """``(log-likelihood, monitored term)``, each summed over rows, from the ``loglik`` that
        :meth:`e_step` returns. By default both are ``loglik``; a model whose EM monitors another
        objective (tempered EM) returns both from its E-step (e.g. stacked) and splits them here.
        The driver reports the first and monitors the second plus :meth:`log_prior`."""
        return loglik, loglik

    def validate_weights(self, weights) -> None:
        """Host-side checks of concrete, already generically checked ``weights``."""

    def validate_params(self, params: PyTree, data) -> None:
        """Host-side check that user-supplied ``params`` fit this model and ``data``."""

    def restate_stats(self, stats: PyTree, params_from: PyTree, params_to: PyTree) -> PyTree:
        """``stats`` computed under ``params_from`` re-expressed for ``params_to``.

        Needed where statistics are taken about a parameter-dependent reference (a Gaussian's
        second moments about the current means): online EM averages statistics from different
        iterates and must first bring them to one reference. Identity by default.
        """
        return stats

    def init_ignores_padding(self, n_rows: int) -> bool:
        """Whether ``init`` draws the same start from data padded to ``n_rows`` rows by rows of
        weight 0 as from the data alone (then :mod:`emjax.engine.row_buckets` may pad). False by default."""
        return False

    def work_per_row(self, data) -> int:
        """Elements of temporary memory that one observation costs in the E-step (chunk sizing)."""
        return 64

    def with_formulation(self, formulation) -> "Model":
        """This model computing as ``formulation`` (:class:`emjax.core.plan.Formulation`, the part of a
        :class:`emjax.core.plan.Plan` that models see) says: a model with choices of arithmetic holds
        it as a static field (``dataclasses.replace``). The engine calls this before tracing;
        by default the model has no choices and returns itself."""
        return self

    def transform_passes(self) -> int:
        """Passes over the rows that the standardising transform needs (0: fit in the data's units)."""
        return 0

    def transform_stats(self, data, weights, previous: tuple):
        """Additive statistics (sums over rows) of pass ``len(previous)`` given earlier passes' totals."""
        raise TypeError(f"{type(self).__name__}.transform_passes() is > 0, so it must define "
                        "transform_stats (see emjax.core.model).")

    def transform_from_stats(self, totals: tuple):
        """``(transform, log_jacobian)`` from every pass's summed statistics."""
        raise TypeError(f"{type(self).__name__}.transform_passes() is > 0, so it must define "
                        "transform_from_stats (see emjax.core.model).")

    def apply_transform(self, data, transform):
        """Data in the coordinates the fit runs in."""
        return data

    def standardizes_in_chunks(self) -> bool:
        """True when the engine may keep the data in the user's units and standardise each chunk
        of rows as it reads it: the transform comes from :meth:`transform_stats` passes and
        :meth:`apply_transform` maps rows independently. By default, when the model has passes
        and does not override :meth:`standardize` (which then gets the data to copy whole)."""
        return self.transform_passes() > 0 and type(self).standardize is Model.standardize

    def init_from_raw(self, key, data, weights, transform) -> PyTree:
        """:meth:`init` on ``apply_transform(data, transform)`` for ``data`` in the user's units.

        The default standardises every row at once (a copy of the data); a model that reads the
        rows in chunks overrides it to map only the rows it reads.
        """
        return self.init(key, self.apply_transform(data, transform), weights)

    def standardize(self, data, weights):
        """Returns ``(data', transform, log_jacobian)``: data in the coordinates the fit runs in.

        ``log_jacobian`` is added to the per-sample objective to report it in the user's units.
        The default runs :meth:`transform_stats` over all rows once per pass.
        """
        totals = ()
        for _ in range(self.transform_passes()):
            totals += (self.transform_stats(data, weights, totals),)
        if not totals:
            return data, None, jnp.zeros((), float_dtype(data))
        transform, log_jacobian = self.transform_from_stats(totals)
        return self.apply_transform(data, transform), transform, log_jacobian

    def params_to_standard(self, params: PyTree, transform) -> PyTree:
        return params

    def params_from_standard(self, params: PyTree, transform) -> PyTree:
        return params

    def to_unconstrained(self, params: PyTree) -> PyTree:
        """``params`` as a pytree of floating arrays in which any finite value is valid (log-weights,
        log-variances, ...): accelerators extrapolate there. The default is the identity; an
        extrapolated point outside the valid set is then caught (non-finite or degenerate) and the
        accelerator falls back to plain EM, so overriding this only makes acceleration work better.
        """
        return params

    def from_unconstrained(self, u: PyTree) -> PyTree:
        """Inverse of :meth:`to_unconstrained` (for every finite ``u``, valid parameters)."""
        return u

    def m_step_with_data(self, stats: PyTree, params: PyTree, data, weights) -> PyTree:
        """The M-step as the engine calls it; by default :meth:`m_step`, which sees only ``stats``.

        A model whose M-step must revisit the rows (a generalized-EM step that ascends the
        expected complete log-likelihood of every row, see :mod:`emjax.components.gem`) overrides this.
        """
        return self.m_step(stats, params)


def check_streamable(model) -> None:
    """Host-side: refuses a model that standardises data without the per-pass ``transform_*`` hooks."""
    if model.transform_passes() == 0 and type(model).standardize is not Model.standardize:
        raise ValueError(f"{type(model).__name__} standardises its data with its own standardize(); "
                         "streamed fits need it written as transform_passes/transform_stats passes.")


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
