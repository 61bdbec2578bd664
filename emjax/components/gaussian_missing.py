r"""Gaussian components on rows with missing values (NaN): the exact EM for data missing at random.

Following Ghahramani & Jordan (1994), a row :math:`x_n` with observed coordinates :math:`o` and
missing ones :math:`m` is scored by the marginal density of what was observed, and the E-step
fills in the missing part with its conditional moments under each component :math:`k`:

.. math::
    \log p(x_o \mid k) = \log \mathcal N(x_o \mid \mu_o, \Sigma_{oo}), \qquad
    \hat x_{m} = \mu_m + \Sigma_{mo} \Sigma_{oo}^{-1} (x_o - \mu_o), \qquad
    C_{mm} = \Sigma_{mm} - \Sigma_{mo} \Sigma_{oo}^{-1} \Sigma_{om}.

The expected complete-data statistics are then sums, as for complete data:
:math:`N_k = \sum_n r_{nk}`, :math:`s_k = \sum_n r_{nk} \hat x_{nk}` and
:math:`S_k = \sum_n r_{nk} \big[(\hat x_{nk} - a_k)(\hat x_{nk} - a_k)^\top + C_{nk}\big]`
about reference means :math:`a_k`, with :math:`\hat x_{nk} = x_n` and :math:`C_{nk} = 0` on the
observed coordinates. They have the shapes of :func:`emjax.components.gaussian.sufficient_stats`,
so the M-step is unchanged.

Shapes stay fixed: for full and tied covariances, each (row, component) pair embeds its observed
block :math:`\Sigma_{oo}` in a ``(d, d)`` matrix with the identity on the missing rows and columns;
its Cholesky factor gives :math:`\log\lvert\Sigma_{oo}\rvert` (the identity adds 0) and the solves.
For diag and spherical covariances the missing coordinates simply drop out.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from ..core import linalg
from .covariance_types import lookup
from .gaussian import EXACT, precision_cholesky

LOG_2PI = math.log(2 * math.pi)


def observed(x):
    """Boolean mask of the observed (non-NaN) entries of ``x``."""
    return ~jnp.isnan(x)


def _row_conditionals(x0, obs, mean, cov):
    """One row and one full covariance: ``(log N(x_o), x_hat (d,), C (d, d))``."""
    d = x0.shape[0]
    eye = jnp.eye(d, dtype=cov.dtype)
    block = jnp.where(obs[:, None] & obs[None, :], cov, eye)  # Sigma_oo, identity elsewhere
    chol = linalg.cholesky(block)  # no LAPACK call (emjax.core.linalg)
    resid = jnp.where(obs, x0 - mean, 0)
    z = linalg.solve_lower(chol, resid[:, None])[:, 0]
    log_det = 2 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    log_dens = -0.5 * (jnp.sum(obs) * LOG_2PI + jnp.dot(z, z, precision=EXACT) + log_det)
    cross = jnp.where(obs[None, :], cov, 0)  # Sigma_{., o}: columns of the observed coordinates
    gain = linalg.cho_solve(chol, cross.T).T  # Sigma_{., o} Sigma_oo^{-1}, zero columns on m
    x_hat = jnp.where(obs, x0, mean + jnp.matmul(gain, resid, precision=EXACT))
    missing = ~obs
    cond_cov = jnp.where(missing[:, None] & missing[None, :],
                         cov - jnp.matmul(gain, cross.T, precision=EXACT), 0)
    return log_dens, x_hat, cond_cov


def _full_conditionals(x, means, covariances, covariance_type: str):
    """``(log_dens (k, n), x_hat (k, n, d), cond_cov (k, n, d, d))`` for full/tied covariances."""
    obs = observed(x)
    x0 = jnp.where(obs, x, 0)
    cov_axis = None if lookup(covariance_type).shared else 0
    per_component = jax.vmap(_row_conditionals, in_axes=(None, None, 0, cov_axis))
    per_row = jax.vmap(per_component, in_axes=(0, 0, None, None), out_axes=1)
    return per_row(x0, obs, means, covariances)


def marginal_log_density(x, means, covariances, covariance_type: str):
    r""":math:`\log \mathcal N(x_{n,o} \mid \mu_{k,o}, \Sigma_{k,oo})` over each row's observed
    coordinates, shape ``(k, n)``; a row with nothing observed has density 1 (log 0)."""
    kind = lookup(covariance_type)
    if kind.matrix:
        return _full_conditionals(x, means, covariances, kind)[0]
    obs = observed(x)
    prec = jnp.broadcast_to(precision_cholesky(kind.per_feature(covariances), kind),
                            means.shape)  # (k, d)
    y = jnp.where(obs[None], (jnp.where(obs, x, 0)[None] - means[:, None]) * prec[:, None], 0)
    obs_f = obs.astype(x.dtype)
    log_det = jnp.matmul(jnp.log(prec), obs_f.T, precision=EXACT)  # (k, n)
    return -0.5 * (jnp.sum(obs_f, axis=1) * LOG_2PI + jnp.sum(y * y, axis=2)) + log_det


def conditional_means(x, means, covariances, covariance_type: str):
    r""":math:`\hat x_{nk}`: observed values, and :math:`\mathbb E[x_m \mid x_o, k]` where
    missing, shape ``(k, n, d)``."""
    if lookup(covariance_type).matrix:
        return _full_conditionals(x, means, covariances, covariance_type)[1]
    obs = observed(x)
    return jnp.where(obs[None], jnp.where(obs, x, 0)[None], means[:, None])


def expected_sufficient_stats(x, resp, means, covariances, ref, covariance_type: str):
    """Expected ``(N, s, S)`` of the complete data for responsibilities ``resp`` ``(k, n)``
    (already multiplied by row weights), in the shapes of ``gaussian.sufficient_stats``."""
    counts, kind = jnp.sum(resp, axis=1), lookup(covariance_type)
    if kind.matrix:
        _, x_hat, cond_cov = _full_conditionals(x, means, covariances, kind)
        sums = jnp.einsum("kn,knd->kd", resp, x_hat, precision=EXACT)
        diff = x_hat - ref[:, None]
        second = (jnp.einsum("kn,knd,kne->kde", resp, diff, diff, precision=EXACT)
                  + jnp.einsum("kn,knde->kde", resp, cond_cov, precision=EXACT))
        if kind.shared:
            second = jnp.sum(second, axis=0)
        return counts, sums, second
    obs = observed(x)
    x0 = jnp.where(obs, x, 0)
    mm = lambda a, b: jnp.matmul(a, b, precision=EXACT)
    observed_mass, missing_mass = mm(resp, obs.astype(x.dtype)), mm(resp, (~obs).astype(x.dtype))
    observed_sums = mm(resp, x0)
    sums = observed_sums + missing_mass * means
    # observed part expanded about ref as in gaussian.sufficient_stats; missing part exact
    observed_second = jnp.maximum(mm(resp, x0 * x0) - 2 * ref * observed_sums
                                  + observed_mass * ref * ref, 0)
    missing_second = missing_mass * ((means - ref) ** 2 + kind.per_feature(covariances))
    return counts, sums, observed_second + missing_second


def impute(x, weights, means, covariances, covariance_type: str):
    r"""``x`` ``(n, d)`` with each NaN replaced by its conditional mean under the mixture of
    ``weights`` ``(k,)``, :math:`\mathbb E[x_m \mid x_o] = \sum_k p(k \mid x_o)\,(\mu_{k,m} +
    \Sigma_{k,mo} \Sigma_{k,oo}^{-1}(x_o - \mu_{k,o}))`; a row with nothing observed gets the
    mixture's mean."""
    log_post = marginal_log_density(x, means, covariances, covariance_type) + jnp.log(weights)[:, None]
    resp = jax.nn.softmax(log_post, axis=0)
    x_hat = conditional_means(x, means, covariances, covariance_type)
    filled = jnp.einsum("kn,knd->nd", resp, x_hat, precision=EXACT)
    return jnp.where(jnp.isnan(x), filled, x)
