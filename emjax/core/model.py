"""The model contract: what every latent-variable model gives the EM engine.

A model is a frozen, hashable dataclass of static configuration. Its methods are pure functions of
arrays, written for ONE dataset and ONE restart; the engine batches them with ``jax.vmap``.
Because statistics are sums, the engine can chunk, shard, weight and pad the data without the
model knowing.

Required (abstract: a model missing one cannot be constructed, and the error names it)::

    init(key, data, weights) -> params                   random starting point for one restart
    e_step(params, data, weights) -> (stats, loglik)      stats: pytree of sums over observations
    m_step(stats, params) -> params                       argmax of E[log p(x, z)] + log_prior
    log_prob(params, data) -> (n,)                        marginal log-likelihood per observation
    posterior(params, data) -> (n, ...)                   posterior of the latent variables

Optional, each with a default below, by what needs it:

- the objective: ``log_prior`` (0), ``is_degenerate`` (False), ``loglik_terms`` (a monitored
  objective other than the log-likelihood, e.g. tempered EM);
- model selection: ``n_free_parameters(params) -> int`` (BIC, AIC and :func:`emjax.select`
  need it; a model without it is refused there, on the host, by a TypeError naming it);
- host-side checks: ``validate``, ``validate_chunk`` (streamed chunks), ``validate_weights``,
  ``validate_params``, ``traced_inputs`` (data given under jit/vmap);
- how the engine computes: ``work_per_row`` (chunk sizing), ``init_ignores_padding`` (row
  buckets), ``with_formulation`` (the E-step choices of :class:`emjax.core.plan.Plan`);
- standardisation: ``standardizer()`` returns ``None`` or one object,
  :class:`emjax.core.standardizer.Standardizer`, that the engine composes;
- accelerators (SQUAREM): ``to_unconstrained`` / ``from_unconstrained``, coordinates in which
  any finite value is valid (the identity by default: acceleration then falls back more often);
- online EM: ``restate_stats`` (statistics about a parameter-dependent reference);
- generalized EM: ``m_step_with_data`` (an M-step that revisits the rows).

A model may also be a JAX pytree (``jax.tree_util.register_dataclass``): its array leaves are
continuous hyperparameters (a prior strength, a fixed parameter) that the engine traces, so they
can be ``vmap``-ed over and differentiated (:mod:`emjax.engine.implicit`); its other fields stay static.
"""
from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp

from .standardizer import RowStandardizer, Standardizer, standardizer_of

PyTree = Any

# the standardisation hooks that Model had before standardizer(); a subclass defining one is refused
_REPLACED_BY_STANDARDIZER = ("transform_passes", "transform_stats", "transform_from_stats",
                             "apply_transform", "standardizes_in_chunks", "init_from_raw",
                             "standardize", "params_to_standard", "params_from_standard")


class Model(abc.ABC):
    """The five required methods (abstract) and the defaults of the optional parts of the contract.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Mean(emjax.Model):                            # one mean, unit variance
        ...     def init(self, key, data, weights):
        ...         return jnp.zeros(data.shape[1:])
        ...     def e_step(self, params, data, weights):
        ...         loglik = jnp.sum(weights * self.log_prob(params, data))
        ...         return (jnp.sum(weights), weights @ data), loglik
        ...     def m_step(self, stats, params):
        ...         return stats[1] / stats[0]
        ...     def log_prob(self, params, data):
        ...         return -0.5 * jnp.sum((data - params) ** 2 + jnp.log(2 * jnp.pi), axis=1)
        ...     def posterior(self, params, data):               # no latent variable
        ...         return jnp.ones((data.shape[0], 1))
        >>> res = emjax.fit(Mean(), jnp.array([[1.0], [3.0]]), 0, max_iter=5)
        >>> res.params.tolist()
        [2.0]
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if issubclass(cls, Standardizer):  # a model that is its own standardizer()
            return
        # every class this one inherits from except Model's own bases (mixins included)
        owners = [k for k in cls.__mro__ if k not in Model.__mro__]
        replaced = sorted({name for k in owners for name in _REPLACED_BY_STANDARDIZER if name in vars(k)})
        if replaced:
            raise TypeError(f"{cls.__name__} defines {', '.join(replaced)}: standardisation hooks on "
                            "the model are no longer called. Return an "
                            "emjax.core.standardizer.Standardizer (or RowStandardizer, for passes "
                            "over rows) from standardizer() instead.")

    # ---- required
    @abc.abstractmethod
    def init(self, key, data, weights) -> PyTree:
        """Random starting parameters for one restart."""

    @abc.abstractmethod
    def e_step(self, params: PyTree, data, weights):
        """``(stats, loglik)``: expected sufficient statistics summed over the (weighted) rows, and
        the summed log-likelihood. A row of weight 0 must contribute exactly nothing."""

    @abc.abstractmethod
    def m_step(self, stats: PyTree, params: PyTree) -> PyTree:
        """New parameters: the argmax of the expected complete log-likelihood plus :meth:`log_prior`."""

    @abc.abstractmethod
    def log_prob(self, params: PyTree, data) -> jnp.ndarray:
        """Marginal log-likelihood of each observation, ``(n,)``."""

    @abc.abstractmethod
    def posterior(self, params: PyTree, data) -> jnp.ndarray:
        """Posterior of each observation's latent variables (responsibilities, state marginals)."""

    # ---- optional: the objective
    def log_prior(self, params: PyTree) -> jnp.ndarray:
        """Log prior density of ``params`` up to a constant; the driver monitors loglik + this."""
        return jnp.zeros(())

    def is_degenerate(self, params: PyTree) -> jnp.ndarray:
        """True where ``params`` are finite but unusable (e.g. a covariance that is not PD)."""
        return jnp.zeros((), bool)

    def loglik_terms(self, loglik):
        """``(log-likelihood, monitored term)``, each summed over rows, from the ``loglik`` that
        :meth:`e_step` returns. By default both are ``loglik``; a model whose EM monitors another
        objective (tempered EM) returns both from its E-step (e.g. stacked) and splits them here.
        The driver reports the first and monitors the second plus :meth:`log_prior`."""
        return loglik, loglik

    # ---- optional: host-side checks, before anything is traced
    def validate(self, data):
        """Host-side checks and conversion of concrete ``data``; returns the converted data."""
        return data

    def validate_chunk(self, data):
        """Host-side checks of one chunk of streamed rows (:func:`emjax.stream_fit`): those of
        :meth:`validate` that hold for any subset of the rows. By default :meth:`validate`."""
        return self.validate(data)

    def validate_weights(self, weights) -> None:
        """Host-side checks of concrete, already generically checked ``weights``: none by default."""
        return None

    def validate_params(self, params: PyTree, data) -> None:
        """Host-side check that user-supplied ``params`` fit this model and ``data``: none by default."""
        return None

    def traced_inputs(self, data, weights):
        """``(data, weights)`` as the engine iterates on them when ``data`` is traced (inside a
        caller's jit/vmap/grad, where :meth:`validate` cannot run): the identity by default; a
        model whose :meth:`validate` converts the data converts here with traceable operations."""
        return data, weights

    # ---- optional: how the engine computes
    def work_per_row(self, data) -> int:
        """Elements of temporary memory that one observation costs in the E-step (chunk sizing)."""
        return 64

    def init_ignores_padding(self, n_rows: int) -> bool:
        """Whether ``init`` draws the same start from data padded to ``n_rows`` rows by rows of
        weight 0 as from the data alone (then :mod:`emjax.engine.row_buckets` may pad). False by default."""
        return False

    def with_formulation(self, formulation) -> "Model":
        """This model computing as ``formulation`` (:class:`emjax.core.plan.Formulation`, the part of a
        :class:`emjax.core.plan.Plan` that models see) says: a model with choices of arithmetic holds
        it as a static field (``dataclasses.replace``). The engine calls this before tracing;
        by default the model has no choices and returns itself."""
        return self

    # ---- optional: standardisation (emjax.core.standardizer)
    def standardizer(self) -> Standardizer | None:
        """The opt-in :class:`~emjax.core.standardizer.Standardizer` of the coordinates the fit runs
        in; ``None`` (the default) fits in the data's units."""
        return None

    # ---- optional: accelerators (SQUAREM)
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

    # ---- optional: online EM
    def restate_stats(self, stats: PyTree, params_from: PyTree, params_to: PyTree) -> PyTree:
        """``stats`` computed under ``params_from`` re-expressed for ``params_to``.

        Needed where statistics are taken about a parameter-dependent reference (a Gaussian's
        second moments about the current means): online EM averages statistics from different
        iterates and must first bring them to one reference. Identity by default.
        """
        return stats

    # ---- optional: generalized EM
    def m_step_with_data(self, stats: PyTree, params: PyTree, data, weights) -> PyTree:
        """The M-step as the engine calls it; by default :meth:`m_step`, which sees only ``stats``.

        A model whose M-step must revisit the rows (a generalized-EM step that ascends the
        expected complete log-likelihood of every row, see :mod:`emjax.components.gem`) overrides this.
        """
        return self.m_step(stats, params)


def check_streamable(model) -> None:
    """Host-side: refuses a model that cannot be fitted from streamed chunks of rows
    (:func:`emjax.stream_fit`, :class:`emjax.OnlineEM`): one whose standardiser needs the data
    whole, or whose M-step revisits the rows (generalized EM)."""
    name = type(model).__name__
    if type(model).m_step_with_data is not Model.m_step_with_data:
        raise ValueError(f"{name}'s M-step revisits the rows (generalized EM: m_step_with_data), so it "
                         "cannot be fitted from streamed chunks or online; fit it with emjax.fit.")
    if not isinstance(standardizer_of(model), RowStandardizer):
        raise ValueError(f"{name} standardizes its data as a whole (its standardizer() is not a "
                         "RowStandardizer), so it cannot be fitted from streamed chunks; a model of "
                         "your own can be, once its standardizer() is an "
                         "emjax.core.standardizer.RowStandardizer (passes over rows).")


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


def delegate(attribute: str, target: type, *names: str):
    """Class decorator: each method in ``names`` calls the method of that name of
    ``self.<attribute>``, an instance of ``target`` (a wrapper model writes only the methods it
    changes). A name that ``target`` has no method of is refused when the class is defined."""
    missing = [name for name in names if not callable(getattr(target, name, None))]
    if missing:
        raise TypeError(f"delegate({attribute!r}, {target.__name__}, ...): {target.__name__} has no "
                        f"method {', '.join(map(repr, missing))} to forward to.")

    def decorate(cls):
        for name in names:
            def forward(self, *args, _name=name, **kwargs):
                return getattr(getattr(self, attribute), _name)(*args, **kwargs)
            forward.__name__, forward.__qualname__ = name, f"{cls.__qualname__}.{name}"
            forward.__doc__ = f"``self.{attribute}.{name}``."
            setattr(cls, name, forward)
        abc.update_abstractmethods(cls)
        return cls
    return decorate
