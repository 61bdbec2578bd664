r"""Gauss-Wishart variational factors of Gaussian components.

Per component, the prior is :math:`\mu_k \mid \Lambda_k \sim \mathcal N(m_0, (\beta_0\Lambda_k)^{-1})`,
:math:`\Lambda_k \sim \mathcal W(W_0, \nu_0)` and the variational factor has the same form,
:math:`q(\mu_k, \Lambda_k) = \mathcal N(\mu_k \mid m_k, (\beta_k\Lambda_k)^{-1})\,
\mathcal W(\Lambda_k \mid W_k, \nu_k)`. As in scikit-learn, scales are held as covariances:
:math:`C_k = (\nu_k W_k)^{-1} = \mathbb E_q[\Lambda_k]^{-1}` (the usual covariance shapes) and
:math:`C_0 = W_0^{-1}` (``covariance_prior``: ``(d, d)`` for full and tied, ``(d,)`` for diag,
a scalar for spherical).

The covariance types restrict :math:`W_k` to be diagonal (diag), a multiple of the identity
(spherical) or one matrix and one :math:`\nu` shared by all components (tied). These are
structured variational families: with :math:`A_k = C_0 + \sum_n r_{nk}(x_n - m_k)(x_n - m_k)^\top
+ \beta_0 (m_k - m_0)(m_k - m_0)^\top`, the exact coordinate-ascent step is
:math:`\beta_k = \beta_0 + N_k`, :math:`m_k = (\beta_0 m_0 + \sum_n r_{nk} x_n)/\beta_k`,
:math:`\nu_k = \nu_0 + N_k` and :math:`\nu_k C_k = A_k` (full), :math:`\operatorname{diag} A_k`
(diag), :math:`\operatorname{tr}(A_k)/d` (spherical); tied: :math:`\nu = \nu_0 + N/K`,
:math:`\nu C = \tfrac1K \sum_k A_k`. These are scikit-learn's updates (with ``reg_covar=0``).
"""
from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln, multigammaln

from ..core import linalg
from . import gaussian as g
from .covariance_types import lookup


def posterior_scale(stats, ref, means, prior_mean, prior_cov, beta0, covariance_type: str):
    """:math:`\\nu_k C_k` (the restricted :math:`A_k` above) from statistics about ``ref``."""
    counts, sums, second = stats
    scatter = g.scatter_about_means(counts, sums, second, ref, means, covariance_type)
    return lookup(covariance_type).wishart_scale(prior_cov, scatter, means - prior_mean, beta0)


def log_det_excess(dof, d: int):
    r""":math:`\mathbb E[\log|\Lambda|] - \log|\mathbb E\Lambda| = \sum_{i<d}\psi(\tfrac{\nu-i}2)
    + d\log 2 - d\log\nu` for :math:`\Lambda \sim \mathcal W(W, \nu)`."""
    return multi_digamma(dof / 2, d) + d * math.log(2.0) - d * jnp.log(dof)


def multi_digamma(a, d: int):
    r""":math:`\psi_d(a) = \sum_{i<d} \psi(a - i/2)`, elementwise in ``a``."""
    offsets = jnp.arange(d, dtype=jnp.asarray(a).dtype) / 2
    return jnp.sum(digamma(jnp.asarray(a)[..., None] - offsets), axis=-1)


def expected_log_density(x, means, covariances, mean_precision, dof, covariance_type: str,
                         formulation=None):
    r""":math:`\mathbb E_q[\log \mathcal N(x_n \mid \mu_k, \Lambda_k^{-1})]`, shape ``(k, n)``:

    :math:`\log\mathcal N(x_n \mid m_k, C_k) + \tfrac12(\mathbb E\log|\Lambda_k|
    - \log|\mathbb E\Lambda_k| - d/\beta_k)`. ``formulation``: as in
    :func:`emjax.components.gaussian.mahalanobis`.
    """
    d = x.shape[-1]
    prec_chol = g.precision_cholesky(covariances, covariance_type)
    plug_in = g.log_density(x, means, prec_chol, covariance_type, formulation)
    return plug_in + jnp.reshape(0.5 * (log_det_excess(dof, d) - d / mean_precision), (-1, 1))


def _prior_log_det(prior_cov, kind, d: int):
    """``log|C_0|`` (``C_0`` is one matrix, a vector of variances or one variance)."""
    if kind.matrix:
        return 2 * kind.log_det(linalg.cholesky(prior_cov), d)
    return kind.log_det(prior_cov, d)


def kl_divergence(means, covariances, mean_precision, dof, prior_mean, prior_cov, beta0, nu0,
                  covariance_type: str):
    r""":math:`\sum_k \mathrm{KL}(q(\mu_k, \Lambda_k) \,\|\, p(\mu_k, \Lambda_k))`.

    With :math:`W_k = (\nu_k C_k)^{-1}`, :math:`W_0 = C_0^{-1}`:
    :math:`\mathbb E_{q(\Lambda)}\mathrm{KL}(q(\mu\mid\Lambda)\|p(\mu\mid\Lambda)) = \tfrac d2
    (\beta_0/\beta - 1 + \log(\beta/\beta_0)) + \tfrac{\beta_0}2 (m - m_0)^\top C^{-1}(m - m_0)` and
    :math:`\mathrm{KL}(\mathcal W(W,\nu)\|\mathcal W(W_0,\nu_0)) = -\tfrac{\nu_0}2\log|C_0 W|
    + \tfrac12(\operatorname{tr}(C_0 C^{-1}) - \nu d) + \log\Gamma_d(\tfrac{\nu_0}2)
    - \log\Gamma_d(\tfrac\nu2) + \tfrac{\nu-\nu_0}2\psi_d(\tfrac\nu2)`. Tied: the Wishart term
    counts once per component (every component holds a copy of the shared factor).
    """
    k, d = means.shape
    kind = lookup(covariance_type)
    prec_chol = g.precision_cholesky(covariances, kind)
    trace = kind.weighted_trace(prior_cov, prec_chol, d)  # tr(C0 C_k^{-1})
    y = kind.whiten(means - prior_mean, prec_chol)
    quad = jnp.sum(y * y, axis=1)  # (m_k - m_0)^T C_k^{-1} (m_k - m_0)
    kl_mean = 0.5 * d * (beta0 / mean_precision - 1 + jnp.log(mean_precision / beta0)) + 0.5 * beta0 * quad
    log_det_c = -2 * kind.log_det(prec_chol, d)
    log_det_c0_w = _prior_log_det(prior_cov, kind, d) - d * jnp.log(dof) - log_det_c
    kl_precision = (-0.5 * nu0 * log_det_c0_w + 0.5 * (trace - dof * d) + multigammaln(nu0 / 2, d)
                    - multigammaln(dof / 2, d) + 0.5 * (dof - nu0) * multi_digamma(dof / 2, d))
    copies = k if kind.shared else 1
    return jnp.sum(kl_mean) + copies * jnp.sum(kl_precision)


def predictive_log_density(x, means, covariances, mean_precision, dof, covariance_type: str):
    r"""Posterior predictive :math:`\log \int \mathcal N(x_n \mid \mu_k, \Lambda_k^{-1})\,
    dq(\mu_k, \Lambda_k)`, shape ``(k, n)``: a Student t with :math:`\nu_k + 1 - d` degrees of
    freedom, location :math:`m_k` and scale matrix :math:`\frac{(1 + \beta_k)\nu_k}
    {(\nu_k + 1 - d)\beta_k} C_k` (Bishop 2006, eq. 10.81)."""
    d = x.shape[-1]
    prec_chol = g.precision_cholesky(covariances, covariance_type)
    log_det_u = jnp.reshape(g.log_det_precision_cholesky(prec_chol, covariance_type, d), (-1, 1))
    plug_in = g.log_density(x, means, prec_chol, covariance_type)
    maha = jnp.maximum(-2 * (plug_in - log_det_u) - d * math.log(2 * math.pi), 0)
    t_dof = jnp.reshape(dof + 1 - d, (-1, 1))
    factor = jnp.reshape((1 + mean_precision) * dof, (-1, 1)) / (t_dof * mean_precision[:, None])
    half = (t_dof + d) / 2
    return (gammaln(half) - gammaln(t_dof / 2) - 0.5 * d * jnp.log(t_dof * math.pi)
            - 0.5 * d * jnp.log(factor) + log_det_u - half * jnp.log1p(maha / (factor * t_dof)))
