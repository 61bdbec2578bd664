r"""A conjugate prior for Gaussian components, in standardised coordinates.

Per component (data centred and scaled, so the data mean is 0), with precision
:math:`\Lambda_k` restricted to the covariance type's family (full, diagonal, isotropic),

.. math::
    \log p(m_k, \Lambda_k) = \tfrac{a}{2}\log|\Lambda_k|
        - \tfrac12 \operatorname{tr}\big(\Lambda_k (s I + \kappa\, m_k m_k^\top)\big) + \text{const},

a Normal :math:`(0, (\kappa\Lambda_k)^{-1})` prior on the mean times a Wishart on the precision.
Tied: one :math:`\Lambda` for every component, with one coefficient :math:`a` and one scale
:math:`s`, and the mean terms of every component. The M-step that maximises the expected complete
log-likelihood plus this log prior is, with :math:`N_k, s_k` the component's counts and sums and
:math:`S_k` its scatter about :math:`m_k`,

.. math::
    m_k = \frac{s_k}{N_k + \kappa}, \qquad
    \Sigma_k = \frac{S_k + \kappa\, m_k m_k^\top + s I}{N_k + a}

(diag keeps the diagonal, spherical the mean of it; tied sums numerators and :math:`N_k` over
components). Two settings (:func:`data_scaled`, :func:`weak`) choose :math:`(\kappa, a, s)`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from . import gaussian as g

#: mclust's ``priorControl`` shrinkage of the means towards the data mean (observations).
SHRINKAGE = 0.01


class Hyper(NamedTuple):
    """``kappa`` (mean shrinkage), ``a`` (coefficient of ``log|Lambda|``), ``s`` (scale)."""

    kappa: object
    a: object
    s: object


def data_scaled(n_components, d: int, covariance_type: str, reg_covar: float) -> Hyper:
    r"""mclust's default prior (Fraley & Raftery 2007) in standardised coordinates:
    :math:`\kappa = 0.01`, scale :math:`s = K^{-2/d}` (the data's variance, 1 here, over
    :math:`K^{2/d}`: the volume of the data shared among K components) plus ``reg_covar``, and
    degrees of freedom :math:`\nu = d + 2`, which give mclust's update
    :math:`\Sigma_k = (\ldots)/(N_k + \nu + d + 2)`: :math:`a = 2d + 4` (tied:
    :math:`\nu + d + 1 + K`). Diag and spherical give each variance the one-dimensional prior
    (:math:`\nu = 3`, :math:`a = 6`), whose strength does not grow with d: ``2d + 4`` pseudo-rows
    would swamp components of high-dimensional diagonal mixtures (digits, d = 64).
    ``n_components`` may be traced (the active components of a padded mixture)."""
    k = jnp.asarray(n_components, jnp.result_type(float))
    if covariance_type in ("diag", "spherical"):
        a = 6.0
    else:
        a = 2 * d + 3 + (k if covariance_type == "tied" else 1)
    return Hyper(SHRINKAGE, a, k ** (-2.0 / d) + reg_covar)


def weak(n_components, covariance_type: str, reg_covar: float, pseudo_count: float) -> Hyper:
    """The near-invisible prior: flat means, ``a = pseudo_count`` (tied: ``K`` times it),
    ``s = reg_covar``."""
    k = jnp.asarray(n_components, jnp.result_type(float))
    return Hyper(0.0, pseudo_count * (k if covariance_type == "tied" else 1), reg_covar)


def min_rows(d: int, covariance_type: str) -> int:
    """Effective rows a component needs for its covariance to be estimated from data rather than
    set by the prior alone: ``d + 1`` (full: a scatter of fewer rows is singular), 2 (diag,
    spherical), 0 (tied: pooled over every row)."""
    return {"full": d + 1, "diag": 2, "spherical": 2, "tied": 0}[covariance_type]


def map_update(stats, ref, hyper: Hyper, covariance_type: str, present=None):
    """MAP ``(means, covariances)``; ``present`` ``(k,)`` (1 active, 0 padding) or None.
    Padding keeps ``ref`` as its mean."""
    counts, sums, second = stats
    kappa, a, s = hyper
    present = jnp.ones_like(counts) if present is None else present
    denominator = counts + kappa
    means = jnp.where((denominator > 0)[:, None] & (present[:, None] > 0),
                      sums / jnp.where(denominator > 0, denominator, 1)[:, None], ref)
    scatter = g.scatter_about_means(counts, sums, second, ref, means, covariance_type)
    scatter = scatter + kappa * _outer(means * present[:, None], covariance_type)
    if covariance_type == "tied":  # divide_per_component divides by the sum of the counts
        divisor = counts + a * present / jnp.sum(present)
    else:
        divisor = jnp.where(present > 0, counts + a, 1)
    cov = g.divide_per_component(g.add_to_diagonal(scatter, s, covariance_type), divisor,
                                 covariance_type)
    return means, cov


def _outer(m, covariance_type: str):
    if covariance_type == "full":
        return m[:, :, None] * m[:, None, :]
    if covariance_type == "tied":
        return m.T @ m
    return m * m


def log_prior(means, covariances, hyper: Hyper, covariance_type: str, present=None):
    """The module's log prior summed over (active) components, normalisers dropped."""
    kappa, a, s = hyper
    k, d = means.shape
    present = jnp.ones((k,), bool) if present is None else present > 0
    prec_chol = g.precision_cholesky(covariances, covariance_type)
    log_det = 2 * g.log_det_precision_cholesky(prec_chol, covariance_type, d)  # log|Lambda_k|
    trace = {"full": lambda u: jnp.sum(u * u, axis=(1, 2)), "tied": lambda u: jnp.sum(u * u),
             "diag": lambda u: jnp.sum(u * u, axis=1), "spherical": lambda u: d * u * u}
    trace = trace[covariance_type](prec_chol)
    quad = g.mahalanobis(jnp.zeros((1, d), means.dtype), means, prec_chol, covariance_type)[:, 0]
    mean_term = -0.5 * kappa * jnp.sum(jnp.where(present, quad, 0))
    if covariance_type == "tied":
        return 0.5 * a * log_det - 0.5 * s * trace + mean_term
    return jnp.sum(jnp.where(present, 0.5 * a * log_det - 0.5 * s * trace, 0)) + mean_term
