r"""One entry per covariance type: the operations that differ between scikit-learn's four shapes.

``full`` :math:`(k, d, d)`, ``tied`` :math:`(d, d)` (one matrix shared by the components),
``diag`` :math:`(k, d)`, ``spherical`` :math:`(k,)`. The public spelling stays the string;
:func:`lookup` finds its entry once, and the Gaussian components read the entry's
fields instead of comparing strings. Each field is the arithmetic the string comparisons chose,
unchanged, so the programs traced through the table are the same.

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
        shape: ``(k, d) ->`` the covariances' shape.
        n_parameters: ``(k, d) ->`` free parameters of the covariances.
        min_rows: ``d ->`` rows a component needs to be estimable (collapse guard).
        log_det: ``(U, d) ->`` :math:`\log|U|` per component from the precision Cholesky factor.
        trace_of_square: ``(U, d) ->`` :math:`\operatorname{tr}(U U^\top)` per component.
        per_feature: ``v ->`` per-component variances or precisions of diag/spherical as a
            ``(k, d)``-broadcastable array (``None`` for full, tied).
        divide: ``(scatter, counts (k,)) ->`` scatter over counts (tied: their total).
        scale: ``(cov, scale (d,)) ->`` the covariance of ``x / scale``, dividing twice.
        noise: ``(chol, z (n, d), labels (n,)) ->`` ``z`` coloured by component ``labels``' factor.
    """

    name: str
    matrix: bool
    shared: bool
    common_scale: bool
    shape: Callable
    n_parameters: Callable
    min_rows: Callable
    log_det: Callable
    trace_of_square: Callable
    per_feature: Callable | None
    divide: Callable
    scale: Callable
    noise: Callable


def _matrix_log_det(u, d):
    return jnp.sum(jnp.log(jnp.diagonal(u, axis1=-2, axis2=-1)), axis=-1)


def _matrix_scale(cov, scale):
    return cov / scale[:, None] / scale[None, :]


FULL = CovarianceType(
    "full", matrix=True, shared=False, common_scale=False,
    shape=lambda k, d: (k, d, d), n_parameters=lambda k, d: k * d * (d + 1) // 2,
    min_rows=lambda d: d + 1, log_det=_matrix_log_det,
    trace_of_square=lambda u, d: jnp.sum(u * u, axis=(1, 2)), per_feature=None,
    divide=lambda scatter, counts: scatter / counts[:, None, None], scale=_matrix_scale,
    noise=lambda chol, z, labels: jnp.einsum("nde,ne->nd", chol[labels], z))
TIED = CovarianceType(
    "tied", matrix=True, shared=True, common_scale=False,
    shape=lambda k, d: (d, d), n_parameters=lambda k, d: d * (d + 1) // 2,
    min_rows=lambda d: 2, log_det=_matrix_log_det,
    trace_of_square=lambda u, d: jnp.sum(u * u), per_feature=None,
    divide=lambda scatter, counts: scatter / jnp.sum(counts), scale=_matrix_scale,
    noise=lambda chol, z, labels: z @ chol.T)
DIAG = CovarianceType(
    "diag", matrix=False, shared=False, common_scale=False,
    shape=lambda k, d: (k, d), n_parameters=lambda k, d: k * d,
    min_rows=lambda d: 2, log_det=lambda u, d: jnp.sum(jnp.log(u), axis=-1),
    trace_of_square=lambda u, d: jnp.sum(u * u, axis=1), per_feature=lambda v: v,
    divide=lambda scatter, counts: scatter / counts[:, None],
    scale=lambda cov, scale: cov / scale / scale,
    noise=lambda chol, z, labels: z * chol[labels])
SPHERICAL = CovarianceType(
    "spherical", matrix=False, shared=False, common_scale=True,
    shape=lambda k, d: (k,), n_parameters=lambda k, d: k,
    min_rows=lambda d: 2, log_det=lambda u, d: d * jnp.log(u),
    trace_of_square=lambda u, d: d * u * u, per_feature=lambda v: v[:, None],
    divide=lambda scatter, counts: jnp.mean(scatter, axis=1) / counts,
    scale=lambda cov, scale: cov / scale[0] / scale[0],
    noise=lambda chol, z, labels: z * chol[labels][:, None])

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
