r"""Weighted responsibilities, the E-step every mixture shares.

With log joint densities :math:`\ell_{kn} = \log \pi_k + \log p(x_n \mid \phi_k)` and row weights
:math:`w_n`, the responsibilities times the row weights and the weighted log-likelihood are

.. math::
    r_{kn} = w_n \exp\bigl(\ell_{kn} - \textstyle\log\sum_j e^{\ell_{jn}}\bigr), \qquad
    L = \sum_n w_n \log\sum_j e^{\ell_{jn}},

where rows outside ``keep`` (by default, rows of weight 0) contribute exactly nothing, even when
their densities are not finite.

Examples:
    >>> import jax.numpy as jnp
    >>> from emjax.components.responsibilities import weighted_responsibilities
    >>> log_joint = jnp.log(jnp.array([[0.25, 0.5], [0.25, 0.5]]))          # (k, n)
    >>> resp, loglik = weighted_responsibilities(log_joint, jnp.array([2.0, 0.0]))
    >>> resp.tolist(), round(float(loglik), 4)                             # row 2 has weight 0
    ([[1.0, 0.0], [1.0, 0.0]], -1.3863)
"""
from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import logsumexp


def weighted_responsibilities(log_joint, weights, keep=None):
    """``(resp (k, n), loglik)`` from ``log_joint`` ``(k, n)`` and row ``weights`` ``(n,)``;
    ``keep`` ``(n,)`` bool (default ``weights > 0``) selects the rows that count."""
    row_ll = logsumexp(log_joint, axis=0)
    keep = weights > 0 if keep is None else keep
    resp = jnp.where(keep, jnp.exp(log_joint - row_ll) * weights, 0)
    return resp, jnp.sum(jnp.where(keep, weights * row_ll, 0))
