r"""The collapse guard: Gaussian components fitted to a few rows or to a subspace of the data.

A Gaussian mixture's likelihood has no maximum: a component that shrinks onto fewer than
:math:`d + 1` rows, or onto rows that share a value in some direction (the lattice of rounded
measurements), scores without bound, and a weak prior only caps the score at a height that
grows as its strength :math:`\psi` falls. Thousands of restarts find such points; their
objective is higher, their model worse. :func:`collapsed` marks them, from the statistics an
M-step already has, and the models give a collapsed component weight 0, so its restart ends
DEGENERATE and is never the winner.

With :math:`N_k` a component's (weighted) rows, :math:`W_k` the scatter of its rows about their
mean and :math:`T` the data's total scatter (within plus between components), a component of a
**full** covariance model has collapsed when

.. math::
    N_k < d + 1 \quad\text{or}\quad
    \exists v,\ \|v\| = 1:\ v^\top W_k v \le \tau(W_k)
    \ \text{ while every direction has }\ v^\top T v > 100\,\tau(T),

with the threshold :math:`\tau(M) = \psi + 64\,\epsilon\,\operatorname{tr} M` (``psi =
reg_covar``, :math:`\epsilon` the dtype's machine epsilon, so that float32 rounding of the scatter
cannot pass for spread): its covariance in direction :math:`v` is then the prior's, not its
rows'. Both tests are Cholesky factorisations (:func:`emjax.core.linalg.cholesky` fails with NaN
exactly when the shifted matrix is not positive definite), :math:`O(K d^3)` per M-step, no
eigendecomposition and no LAPACK call. When the data themselves are flat in some direction
(collinear features) only the row count applies. **diag** and **spherical** components collapse
with fewer than 2 rows (a feature constant within a cluster, like the blank pixels of a digit, is
legitimate there). **tied** covariances never collapse (one covariance shared by all rows). The
guard is off when the data cannot give every component that many rows
(:math:`N < K(d + 1)`, resp. :math:`2K`).
"""
from __future__ import annotations

import jax.numpy as jnp

from ..core import linalg
from .covariance_types import lookup

#: The data must spread this many thresholds in every direction for the subspace test to apply.
DATA_SPREAD = 100.0
#: Rounding allowance of the threshold, in machine epsilons times the scatter's trace.
ROUNDING = 64.0


def _threshold(scatter, reg_covar):
    eps = jnp.finfo(scatter.dtype).eps
    return reg_covar + ROUNDING * eps * jnp.trace(scatter, axis1=-2, axis2=-1)


def _not_positive_definite_after_shift(scatter, shift):
    d = scatter.shape[-1]
    shifted = scatter - shift[..., None, None] * jnp.eye(d, dtype=scatter.dtype)
    return jnp.any(jnp.isnan(linalg.cholesky(shifted)), axis=(-2, -1))


def collapsed(counts, means, scatter, present, reg_covar, covariance_type: str):
    r"""``(k,)`` bool: the components that have collapsed (module docstring).

    Args:
        counts: ``(k,)`` rows per component, :math:`N_k`.
        means: ``(k, d)`` component means, :math:`m_k`.
        scatter: the scatter about ``means``: ``(k, d, d)`` :math:`W_k` for "full" (unused for the
            other types, which only count rows).
        present: ``(k,)`` components that exist (padding components are never collapsed).
        reg_covar: :math:`\psi`, in the fit's units.
        covariance_type: "full", "tied", "diag" or "spherical".
    """
    present, kind = present > 0, lookup(covariance_type)
    k, d = means.shape
    if kind.shared:
        return jnp.zeros((k,), bool)
    needed = kind.min_rows(d)
    total = jnp.sum(jnp.where(present, counts, 0))
    guarded = present & (total >= needed * jnp.sum(present))
    few_rows = counts < needed
    if not kind.matrix:
        return guarded & few_rows
    centre = jnp.sum(counts[:, None] * means, axis=0) / jnp.where(total > 0, total, 1)
    between = jnp.where(present[:, None], means - centre, 0)
    within = jnp.where(present[:, None, None], scatter, 0)
    data = jnp.sum(within, axis=0) + jnp.einsum("k,kd,ke->de", counts, between, between)
    data_spreads = ~_not_positive_definite_after_shift(data, DATA_SPREAD * _threshold(data, reg_covar))
    thin = _not_positive_definite_after_shift(scatter, _threshold(scatter, reg_covar))
    return guarded & (few_rows | (data_spreads & thin))
