r"""A mixture of linear regressions with a closed-form M-step, written as a user model.

.. math::
    p(y \mid x, \theta) = \sum_{k=1}^K \pi_k \, \mathcal N(y \mid x^\top \beta_k, \sigma_k^2)

with a proper prior, so the M-step is exact MAP and the objective never falls: Dirichlet(1 + c)
weights, :math:`\beta_k \mid \sigma_k^2 \sim \mathcal N(0, \sigma_k^2 / \lambda \, I)` (ridge
strength :math:`\lambda`) and :math:`\log p(\sigma_k^2) = -\tfrac c2 \log \sigma_k^2 - \tfrac{\psi}{2\sigma_k^2}`.
With statistics :math:`N_k = \sum r_{ik}`, :math:`A_k = \sum r_{ik} x_i x_i^\top`,
:math:`b_k = \sum r_{ik} x_i y_i`, :math:`s_k = \sum r_{ik} y_i^2`, the M-step is
:math:`\beta_k = (A_k + \lambda I)^{-1} b_k`,
:math:`\sigma_k^2 = (s_k - \beta_k^\top b_k + \psi) / (N_k + d + c)`,
:math:`\pi_k = (N_k + c) / (N + K c)`.

The ridge strength is a pytree leaf (``register_dataclass``): it can be an array, differentiated
and ``vmap``-ed over like the data. Include a column of ones in ``x`` for intercepts.
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

import emjax

PSEUDO_COUNT = 1e-2


class RegressionMixtureParams(NamedTuple):
    weights: jnp.ndarray     # (k,)
    coefs: jnp.ndarray       # (k, d)
    variances: jnp.ndarray   # (k,)


def sufficient_stats(resp, data):
    """``(N_k, A_k, b_k, s_k)`` for responsibilities ``resp`` ``(n, k)`` (row weights included)."""
    x, y = data
    return (resp.sum(0), jnp.einsum("nk,nd,ne->kde", resp, x, x),
            jnp.einsum("nk,nd,n->kd", resp, x, y), jnp.einsum("nk,n->k", resp, y * y))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MixtureOfRegressions(emjax.Model):
    """``n_components`` linear regressions of ``y`` on ``x``; data are ``(x (n, d), y (n,))``."""

    n_components: int = dataclasses.field(metadata=dict(static=True))
    ridge: float = 1e-2         # lambda: a pytree leaf (differentiable hyperparameter)
    noise_floor: float = dataclasses.field(default=1e-4, metadata=dict(static=True))  # psi

    def _log_joint(self, params, data):
        x, y = data
        mean = x @ params.coefs.T                                   # (n, k)
        resid = (y[:, None] - mean) ** 2 / params.variances
        log_normal = -0.5 * (math.log(2 * math.pi) + jnp.log(params.variances) + resid)
        return log_normal + jnp.log(params.weights)                 # (n, k)

    def log_prob(self, params, data):
        return logsumexp(self._log_joint(params, data), axis=1)

    def posterior(self, params, data):
        return jax.nn.softmax(self._log_joint(params, data), axis=1)

    def e_step(self, params, data, weights):
        table = self._log_joint(params, data)
        row_ll = logsumexp(table, axis=1)
        keep = weights > 0
        resp = jnp.where(keep[:, None], jnp.exp(table - row_ll[:, None]), 0) * weights[:, None]
        return sufficient_stats(resp, data), jnp.sum(jnp.where(keep, weights * row_ll, 0))

    def m_step(self, stats, params):
        counts, xx, xy, yy = stats
        k, d = xy.shape
        coefs = jnp.linalg.solve(xx + self.ridge * jnp.eye(d, dtype=xx.dtype), xy[..., None])[..., 0]
        rss = jnp.maximum(yy - jnp.sum(coefs * xy, axis=1), 0)
        variances = (rss + self.noise_floor) / (counts + d + PSEUDO_COUNT)
        weights = (counts + PSEUDO_COUNT) / (counts.sum() + k * PSEUDO_COUNT)
        return RegressionMixtureParams(weights, coefs, variances)

    def log_prior(self, params):
        d = params.coefs.shape[1]
        var = params.variances
        coef_prior = (0.5 * d * jnp.log(self.ridge / var)
                      - 0.5 * self.ridge * jnp.sum(params.coefs ** 2, 1) / var)
        noise_prior = -0.5 * PSEUDO_COUNT * jnp.log(var) - 0.5 * self.noise_floor / var
        return PSEUDO_COUNT * jnp.sum(jnp.log(params.weights)) + jnp.sum(coef_prior + noise_prior)

    def is_degenerate(self, params):
        return ~jnp.all(params.variances > 0) | ~jnp.all(params.weights > 0)

    def init(self, key, data, weights):
        """One M-step from random (Dirichlet) responsibilities."""
        x, _ = data
        resp = jax.random.dirichlet(key, jnp.ones(self.n_components, x.dtype), (x.shape[0],))
        return self.m_step(sufficient_stats(resp * weights[:, None], data), None)

    def n_free_parameters(self, params) -> int:
        k, d = params.coefs.shape
        return (k - 1) + k * d + k
