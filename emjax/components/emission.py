r"""The emission protocol: one distribution family for ``k`` components (mixture components or
HMM states), plugged into :class:`emjax.Mixture` and :class:`emjax.HMM` alike.

An emission is a frozen, hashable dataclass of static configuration; its methods are pure
functions of its parameters :math:`\phi = (\phi_1, \dots, \phi_k)` (a NamedTuple,
``params_type``) and of observations as rows ``x`` ``(n, ...)`` (an HMM's steps flattened over
sequences). With responsibilities :math:`r_{jn}` (already multiplied by row weights):

* ``log_density(params, x)``: :math:`\log p(x_n \mid \phi_j)`, component-major ``(k, n)``;
* ``stats(params, x, resp)``: the sufficient statistics :math:`\sum_n r_{jn} T(x_n)` (sums over
  rows, so chunks and sequences add; ``params`` may name a reference they are taken about);
* ``m_step(stats, params)``: :math:`\arg\max_\phi \sum_j \sum_n r_{jn} \log p(x_n \mid \phi_j)
  + \log p(\phi)`, the MAP update of the emission's conjugate prior of strength ``pseudo_count``
  (0: maximum likelihood; there a component without weight keeps ``params``; ``params`` is None
  at a restart's start, where every component has weight);
* ``log_prior(params)``: :math:`\log p(\phi)` up to a constant (0 for maximum likelihood), so
  log-likelihood + log prior never decreases under EM;
* ``is_degenerate(params)``: a traced bool, True when the parameters left the family;
* ``init(key, x, weights, k)``: starting parameters from the rows.

The rest have defaults: host-side checks (``validate``, ``validate_params``), counts
(``n_free_parameters``, ``work_per_row``, ``work_per_step``), step-major forms for
the scaled HMM E-step and standardisation hooks (the identity). ``sample(key, params, states)``
(one draw per entry of ``states``, for :meth:`emjax.HMM.sample` and a mixture's ``sample``) is
optional: a model whose emission lacks it refuses to sample, naming it.
"""
from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core.validation import as_float_array, check_finite, check_param_shape

PyTree = Any


def component_major(resp):
    """Step-major responsibilities ``(t, s, k)`` as ``(k, t s)``, materialised (a transpose fused
    into the statistics' products that read it is several times slower on CPU)."""
    return jax.lax.optimization_barrier(resp.reshape(-1, resp.shape[-1]).T)


class Emission(abc.ABC):
    """An emission family (module docstring). Subclasses are frozen dataclasses that set
    ``params_type`` and implement the abstract methods.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> emission = emjax.PoissonEmission()
        >>> params = emjax.PoissonEmissionParams(rates=jnp.array([[1.0], [10.0]]))
        >>> emission.log_density(params, jnp.array([[0.0], [10.0]])).argmax(axis=0).tolist()
        [0, 1]
    """

    #: The NamedTuple of the emission's parameters (one leading axis of ``k`` per field).
    params_type: type = tuple

    @abc.abstractmethod
    def log_density(self, params, x):
        """``(k, n)`` log-densities of the rows ``x``."""

    @abc.abstractmethod
    def stats(self, params, x, resp):
        """Sufficient statistics of rows ``x`` under weighted responsibilities ``resp`` ``(k, n)``."""

    @abc.abstractmethod
    def m_step(self, stats, params):
        """MAP (``pseudo_count`` 0: maximum-likelihood) parameters from summed statistics."""

    @abc.abstractmethod
    def log_prior(self, params):
        """Log prior of ``params`` (matching :meth:`m_step`), a scalar."""

    @abc.abstractmethod
    def is_degenerate(self, params):
        """Traced bool: True when ``params`` left the family."""

    @abc.abstractmethod
    def init(self, key, x, weights, k: int):
        """Starting parameters of ``k`` components from rows ``x`` with weights ``(n,)``."""

    # ------------------------------------------------------------------ defaults
    def with_formulation(self, formulation) -> "Emission":
        """This emission computing as ``formulation`` (:class:`emjax.core.plan.Formulation`); the
        default has no choices of arithmetic and returns itself."""
        return self

    def log_density_steps(self, params, x):
        """``(n, k)`` log-densities, step-major (the scaled HMM E-step's layout)."""
        return self.log_density(params, x).T

    def stats_steps(self, params, x, resp):
        """:meth:`stats` for step-major responsibilities ``(t, s, k)`` of the rows ``x``."""
        return self.stats(params, x, component_major(resp))

    # ------------------------------------------------------------------ standardisation
    def standardize(self, x, weights):
        """``(x', transform, log-Jacobian per row)``; the default is the identity."""
        return x, None, jnp.zeros((), weights.dtype)

    def to_standard(self, params, transform):
        """``params`` in the coordinates of :meth:`standardize` (identity by default)."""
        return params

    def from_standard(self, params, transform):
        """Inverse of :meth:`to_standard`."""
        return params

    def standardizes(self) -> bool:
        """Whether :meth:`standardize` is more than the identity."""
        return type(self).standardize is not Emission.standardize

    # ------------------------------------------------------------------ host side
    def validate(self, x, name: str = "data"):
        """Concrete rows ``x`` ``(n, ...)`` converted for the family (a clear error naming
        ``name`` otherwise); by default floats, finite."""
        x = as_float_array(x, name)
        check_finite(x, name)
        return x

    def validate_steps(self, x, lengths):
        """Concrete sequences ``x`` ``(s, t, ...)`` with ``lengths`` ``(s,)``: :meth:`validate` of
        every real step (padded steps filled with 0); on an error it is repeated per sequence so
        the message names ``data[s]`` and the step within it."""
        x = np.asarray(x)
        mask = np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]
        mask = mask.reshape(mask.shape + (1,) * (x.ndim - 2))
        filled = np.where(mask, x, 0) if x.dtype.kind in "biuf" else x
        try:
            flat = self.validate(filled.reshape((-1,) + x.shape[2:]), "data")
        except ValueError:
            for s, length in enumerate(lengths):
                self.validate(x[s, :length], f"data[{s}] (steps x features)")
            raise
        return flat.reshape(x.shape)

    def param_shapes(self, k: int, d: int) -> dict | None:
        """``{field: shape}`` of the parameters for ``k`` components and ``d`` features; ``None``
        (the default) leaves them undeclared, and :meth:`validate_params` then checks only that
        every field has ``k`` rows."""
        return None

    def n_features(self, params) -> int:
        """The data's feature count read from ``params`` (checks without data)."""
        return int(np.shape(params[0])[-1])

    def validate_params(self, params, k: int, d: int, prefix: str = "params.emission",
                        context: str | None = None) -> None:
        """Host-side: ``params`` is a ``params_type`` of :meth:`param_shapes` (errors name
        ``prefix.<field>`` and ``context``)."""
        fields = self.params_type._fields
        if not isinstance(params, tuple) or len(params) != len(fields):
            raise TypeError(f"{prefix} must be {self.params_type.__name__}{fields}; got "
                            f"{type(params).__name__}.")
        context = context or f"{type(self).__name__} with k={k}, n_features={d}"
        params = self.params_type(*params)
        shapes = self.param_shapes(k, d)
        if shapes is None:  # undeclared: k rows per field
            shapes = {field: (k,) + tuple(np.shape(getattr(params, field)))[1:] for field in fields}
        for field, shape in shapes.items():
            check_param_shape(getattr(params, field), shape, f"{prefix}.{field}", context,
                              features_last=len(shape) == 2)

    def n_free_parameters(self, params) -> int:
        """Free parameters of ``params`` (model selection)."""
        return sum(int(np.size(p)) for p in params)

    def work_per_row(self, k: int, d: int) -> int:
        """Temporary elements one row costs in a mixture's E-step, beyond the mixture's own."""
        return 2 * k * d

    def work_per_step(self, k: int, d: int) -> int:
        """Temporary elements one step costs in an HMM's E-step, beyond the chain's own."""
        return self.work_per_row(k, d) + 3 * k
