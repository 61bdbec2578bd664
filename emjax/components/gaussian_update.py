r"""Gaussian M-steps: MAP and maximum-likelihood means and covariances, and the Wishart log prior.

From the statistics of :func:`emjax.components.gaussian.sufficient_stats` about reference means
:math:`a_k` (counts :math:`N_k`, sums :math:`s_k`, second moments :math:`S_k`), the means are
:math:`m_k = s_k / N_k` and the covariances the scatter about them over the counts, with the prior
(:func:`map_update`, :func:`log_wishart_prior`) or scikit-learn's and hmmlearn's ``reg_covar``
(:func:`ml_update`); what differs between covariance types is read from
:mod:`emjax.components.covariance_types`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from .collapse import collapsed
from .covariance_types import lookup
from .gaussian import add_to_diagonal, precision_cholesky, scatter_about_means


class GaussianUpdate(NamedTuple):
    """An M-step's means ``(k, d)``, covariances, and ``collapsed`` ``(k,)`` (bool): the
    components the collapse guard marks (:func:`emjax.components.collapse.collapsed`; ``None``
    when not guarded)."""

    means: jnp.ndarray
    covariances: jnp.ndarray
    collapsed: jnp.ndarray | None


def map_update(stats, ref, reg_covar, pseudo_count, covariance_type: str, *, present=None,
               previous=None, guard: bool = False) -> GaussianUpdate:
    r"""MAP means and covariances under a flat prior on means and a Wishart prior on precisions.

    :math:`m_k = s_k / N_k` (``ref`` where :math:`N_k = 0`) and
    :math:`\Sigma_k = (S_k + \psi I) / (N_k + c)`, with ``S`` the scatter about :math:`m_k`,
    ``psi = reg_covar`` and ``c = pseudo_count`` (see :func:`log_wishart_prior`; tied:
    :math:`(\sum_k S_k + \psi I) / (N + K c)`).

    Args:
        stats: ``(N, s, S)`` from :func:`emjax.components.gaussian.sufficient_stats` about ``ref``.
        ref: ``(k, d)`` the statistics' reference means.
        present: optional ``(k,)`` bool, the components that exist; the others are padding
            (:mod:`emjax.selection.padded_mixture`): no pseudo-count, divisor 1, never collapsed.
        previous: covariances that padding components keep (with ``present``; tied is shared).
        guard: also mark collapsed components (:func:`emjax.components.collapse.collapsed`).

    Examples:
        >>> import jax.numpy as jnp
        >>> from emjax.components import gaussian as g, gaussian_update as gu
        >>> x = jnp.array([[0.0], [2.0]])
        >>> stats = g.sufficient_stats(x, jnp.ones((1, 2)), jnp.zeros((1, 1)), "diag")
        >>> means, cov, _ = gu.map_update(stats, jnp.zeros((1, 1)), 0.0, 0.0, "diag")
        >>> means.tolist(), cov.tolist()                   # the sample mean and variance
        ([[1.0]], [[1.0]])
    """
    counts = stats[0]
    present = _as_present(present, counts)
    means, scatter = means_and_scatter(stats, ref, covariance_type)
    cov = lookup(covariance_type).divide(add_to_diagonal(scatter, reg_covar, covariance_type),
                                         _divisor(counts + pseudo_count * present, present,
                                                  covariance_type))
    return _finish(counts, means, scatter, cov, present, previous, reg_covar, guard, covariance_type)


def ml_update(stats, ref, reg_covar, covariance_type: str, *, count_floor: float = 0.0,
              present=None, previous=None, guard: bool = False) -> GaussianUpdate:
    r"""Maximum-likelihood means and covariances with ``reg_covar`` added to the diagonal after
    the division (scikit-learn's and hmmlearn's convention; not a prior):
    :math:`m_k = s_k / N'_k`, :math:`\Sigma_k = S_k / N'_k + \psi I` with
    :math:`N'_k = N_k + ` ``count_floor`` (scikit-learn adds ``10 eps`` to every count).
    ``present``, ``previous`` and ``guard`` as in :func:`map_update`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from emjax.components import gaussian as g, gaussian_update as gu
        >>> stats = g.sufficient_stats(jnp.array([[0.0], [2.0]]), jnp.ones((1, 2)), jnp.zeros((1, 1)), "spherical")
        >>> gu.ml_update(stats, jnp.zeros((1, 1)), 0.5, "spherical").covariances.tolist()
        [1.5]
    """
    counts = stats[0]
    present = _as_present(present, counts)
    floored = counts + count_floor * present if count_floor else counts
    means, scatter = means_and_scatter(stats, ref, covariance_type, floored)
    cov = add_to_diagonal(lookup(covariance_type).divide(scatter, _divisor(floored, present, covariance_type)),
                          reg_covar, covariance_type)
    return _finish(counts, means, scatter, cov, present, previous, reg_covar, guard, covariance_type)


def _as_present(present, counts):
    """``present`` as 0/1 in the counts' dtype (all ones when not given)."""
    return jnp.ones_like(counts) if present is None else jnp.asarray(present).astype(counts.dtype)


def means_and_scatter(stats, ref, covariance_type: str, divisor_counts=None):
    """Means :math:`s_k / N_k` (``ref`` where :math:`N_k = 0`; ``divisor_counts`` in place of
    :math:`N_k` if given) and the scatter about them, from statistics about ``ref``."""
    counts, sums, second = stats
    divisor_counts = counts if divisor_counts is None else divisor_counts
    seen = divisor_counts > 0
    means = jnp.where(seen[:, None], sums / jnp.where(seen, divisor_counts, 1)[:, None], ref)
    return means, scatter_about_means(counts, sums, second, ref, means, covariance_type)


def _divisor(counts, present, covariance_type: str):
    """Per-component counts to divide by; 1 for padding (tied divides by the total)."""
    return counts if lookup(covariance_type).shared else jnp.where(present > 0, counts, 1)


def _finish(counts, means, scatter, cov, present, previous, reg_covar, guard, covariance_type):
    if previous is not None and not lookup(covariance_type).shared:
        cov = jnp.where(jnp.reshape(present > 0, (-1,) + (1,) * (cov.ndim - 1)), cov, previous)
    gone = collapsed(counts, means, scatter, present, reg_covar, covariance_type) if guard else None
    return GaussianUpdate(means, cov, gone)


def log_wishart_prior(covariances, reg_covar, pseudo_count, covariance_type: str, k: int, d: int,
                      present=None):
    r"""Log prior of :func:`map_update`: :math:`\sum_k \tfrac{c}{2}\log|\Lambda_k|
    - \tfrac{\psi}{2}\operatorname{tr}\Lambda_k` (+ const) for ``k`` components of ``d``
    features, ``c = pseudo_count``; tied: one precision of strength :math:`K c`. ``present``
    (optional ``(k,)`` bool, as in :func:`map_update`): padding components count for nothing.

    Examples:
        >>> import jax.numpy as jnp
        >>> from emjax.components import gaussian as g, gaussian_update as gu
        >>> round(float(gu.log_wishart_prior(jnp.array([0.5, 1.0]), 1.0, 2.0, "spherical", 2, 1)), 4)  # log 2 - 3/2
        -0.8069
    """
    kind = lookup(covariance_type)
    prec_chol = precision_cholesky(covariances, kind)
    log_det = 2 * kind.log_det(prec_chol, d)  # log|Lambda_k|
    trace = kind.trace_of_square(prec_chol, d)
    if kind.shared:  # one shared Wishart of strength (present components) x c
        strength = k * pseudo_count if present is None else jnp.sum(present) * pseudo_count
    else:
        strength = pseudo_count
        if present is not None:
            log_det, trace = jnp.where(present, log_det, 0), jnp.where(present, trace, 0)
    return 0.5 * strength * jnp.sum(log_det) - 0.5 * reg_covar * jnp.sum(trace)
