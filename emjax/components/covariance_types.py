r"""One entry per covariance type: the operations that differ between scikit-learn's four shapes.

``full`` :math:`(k, d, d)`, ``tied`` :math:`(d, d)` (one matrix shared by the components),
``diag`` :math:`(k, d)`, ``spherical`` :math:`(k,)`. The public spelling stays the string;
:func:`lookup` finds its entry once (an unknown name is a ``ValueError`` that names
``covariance_type`` and the four spellings), and the Gaussian components, the variational
Gauss-Wishart factors, the missing-value and expanded E-steps and the host-side shells read the
entry's fields instead of comparing strings. Each field is the arithmetic the string comparisons
chose, unchanged, so the programs traced through the table are the same. The flags and
``shape``, ``n_parameters``, ``min_rows``, ``per_feature`` and ``pool_variances`` take NumPy
arrays too; the other operations are JAX functions.

Examples:
    >>> from emjax.components.covariance_types import lookup
    >>> full = lookup("full")
    >>> full.shape(3, 2), full.matrix, full.shared, full.n_parameters(3, 2)
    ((3, 2, 2), True, False, 9)
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class CovarianceType:
    r"""The per-type operations of one covariance type (module docstring).

    Attributes:
        name: the public spelling.
        matrix: covariances are ``(..., d, d)`` matrices (full, tied), not variances.
        shared: one covariance for all components (tied).
        common_scale: one standardising scale for all features (spherical).
        component_ndim: axes of one component's covariance, each of length ``d``: 2 (full,
            tied), 1 (diag), 0 (spherical); a variational prior covariance has this shape.
        shape: ``(k, d) ->`` the covariances' shape.
        n_parameters: ``(k, d) ->`` free parameters of the covariances.
        min_rows: ``d ->`` rows a component needs to be estimable (collapse guard).
        log_det: ``(U, d) ->`` :math:`\log|U|` per component from the precision Cholesky factor.
        trace_of_square: ``(U, d) ->`` :math:`\operatorname{tr}(U U^\top)` per component.
        per_feature: ``v ->`` per-component variances or precisions of diag/spherical as a
            ``(k, d)``-broadcastable array (``None`` for full, tied). Indexing only, so it takes
            NumPy arrays too (the host-side shells).
        pool_variances: ``v (..., d) ->`` per-feature variances in the type's form: diag as they
            are, spherical their mean over features (``None`` for full, tied; NumPy or JAX arrays).
        divide: ``(scatter, counts (k,)) ->`` scatter over counts (tied: their total).
        scale: ``(cov, scale (d,)) ->`` the covariance of ``x / scale``, dividing twice.
        noise: ``(chol, z (n, d), labels (n,)) ->`` ``z`` coloured by component ``labels``' factor.
        whiten: ``(diff (k, d), U) ->`` :math:`\text{diff}_k U_k` per component, ``(k, d)``.
        weighted_trace: ``(C, U, d) ->`` :math:`\operatorname{tr}(C\, U_k U_k^\top)` per component
            (tied: a scalar) for ``C`` one covariance of the type's per-component shape
            (``(d, d)``, ``(d,)`` or a scalar).
        wishart_scale: ``(C_0, scatter, diff (k, d), beta0) ->`` :math:`\nu_k C_k`, the
            Gauss-Wishart factor's scale restricted to the type (``scatter`` in the statistics'
            shape: diag and spherical give diagonals ``(k, d)``, tied the sum over components)
            (:func:`emjax.components.gauss_wishart.posterior_scale`).
    """

    name: str
    matrix: bool
    shared: bool
    common_scale: bool
    component_ndim: int
    shape: Callable
    n_parameters: Callable
    min_rows: Callable
    log_det: Callable
    trace_of_square: Callable
    per_feature: Callable | None
    pool_variances: Callable | None
    divide: Callable
    scale: Callable
    noise: Callable
    whiten: Callable
    weighted_trace: Callable
    wishart_scale: Callable


def _matrix_log_det(u, d):
    return jnp.sum(jnp.log(jnp.diagonal(u, axis1=-2, axis2=-1)), axis=-1)


def _matrix_scale(cov, scale):
    return cov / scale[:, None] / scale[None, :]


def _full_wishart_scale(prior_cov, scatter, diff, beta0):
    return prior_cov + scatter + beta0 * diff[:, :, None] * diff[:, None, :]


def _tied_wishart_scale(prior_cov, scatter, diff, beta0):
    return prior_cov + (scatter + beta0 * diff.T @ diff) / diff.shape[0]


def _diag_wishart_scale(prior_cov, scatter, diff, beta0):
    return prior_cov + (scatter + beta0 * diff * diff)


def _spherical_wishart_scale(prior_cov, scatter, diff, beta0):
    return prior_cov + jnp.mean(scatter + beta0 * diff * diff, axis=1)


FULL = CovarianceType(
    "full", matrix=True, shared=False, common_scale=False, component_ndim=2,
    shape=lambda k, d: (k, d, d), n_parameters=lambda k, d: k * d * (d + 1) // 2,
    min_rows=lambda d: d + 1, log_det=_matrix_log_det,
    trace_of_square=lambda u, d: jnp.sum(u * u, axis=(1, 2)), per_feature=None, pool_variances=None,
    divide=lambda scatter, counts: scatter / counts[:, None, None], scale=_matrix_scale,
    noise=lambda chol, z, labels: jnp.einsum("nde,ne->nd", chol[labels], z),
    whiten=lambda diff, u: jnp.einsum("kd,kde->ke", diff, u),
    weighted_trace=lambda c, u, d: jnp.einsum("de,kef,kdf->k", c, u, u),
    wishart_scale=_full_wishart_scale)
TIED = CovarianceType(
    "tied", matrix=True, shared=True, common_scale=False, component_ndim=2,
    shape=lambda k, d: (d, d), n_parameters=lambda k, d: d * (d + 1) // 2,
    min_rows=lambda d: 2, log_det=_matrix_log_det,
    trace_of_square=lambda u, d: jnp.sum(u * u), per_feature=None, pool_variances=None,
    divide=lambda scatter, counts: scatter / jnp.sum(counts), scale=_matrix_scale,
    noise=lambda chol, z, labels: z @ chol.T,
    whiten=lambda diff, u: diff @ u, weighted_trace=lambda c, u, d: jnp.sum((c @ u) * u),
    wishart_scale=_tied_wishart_scale)
DIAG = CovarianceType(
    "diag", matrix=False, shared=False, common_scale=False, component_ndim=1,
    shape=lambda k, d: (k, d), n_parameters=lambda k, d: k * d,
    min_rows=lambda d: 2, log_det=lambda u, d: jnp.sum(jnp.log(u), axis=-1),
    trace_of_square=lambda u, d: jnp.sum(u * u, axis=1), per_feature=lambda v: v,
    pool_variances=lambda v: v,
    divide=lambda scatter, counts: scatter / counts[:, None],
    scale=lambda cov, scale: cov / scale / scale,
    noise=lambda chol, z, labels: z * chol[labels],
    whiten=lambda diff, u: diff * u, weighted_trace=lambda c, u, d: jnp.sum(c * u * u, axis=1),
    wishart_scale=_diag_wishart_scale)
SPHERICAL = CovarianceType(
    "spherical", matrix=False, shared=False, common_scale=True, component_ndim=0,
    shape=lambda k, d: (k,), n_parameters=lambda k, d: k,
    min_rows=lambda d: 2, log_det=lambda u, d: d * jnp.log(u),
    trace_of_square=lambda u, d: d * u * u, per_feature=lambda v: v[:, None],
    pool_variances=lambda v: v.mean(axis=-1),
    divide=lambda scatter, counts: jnp.mean(scatter, axis=1) / counts,
    scale=lambda cov, scale: cov / scale[0] / scale[0],
    noise=lambda chol, z, labels: z * chol[labels][:, None],
    whiten=lambda diff, u: diff * u[:, None], weighted_trace=lambda c, u, d: d * c * u * u,
    wishart_scale=_spherical_wishart_scale)

TABLE = {t.name: t for t in (FULL, TIED, DIAG, SPHERICAL)}
#: The public spellings, in scikit-learn's order.
COVARIANCE_TYPES = tuple(TABLE)


def lookup(name) -> CovarianceType:
    """The entry of ``name`` ("full", "tied", "diag" or "spherical"; an entry passes through)."""
    if isinstance(name, CovarianceType):
        return name
    try:
        return TABLE[name]
    except (KeyError, TypeError):
        raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}; got {name!r}.") from None
