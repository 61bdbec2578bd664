r"""A fitted Gaussian mixture's densities of new rows, on the host (NumPy).

``score``, ``score_samples``, ``predict`` and ``predict_proba`` of complete rows are a few small
matrix products. As a JAX program they would be traced, lowered and loaded once per
``n_components`` and covariance type in every process (about 15% of a fresh process's
GridSearchCV over 3 K with a warm persistent cache), then dispatched per call; in NumPy they
cost microseconds. Rows with NaN (``missing="marginalize"``) go to the engine instead.

With the precision Cholesky factor :math:`U_k` (:math:`\Sigma_k^{-1} = U_k U_k^\top`, scikit-learn's
``precisions_cholesky_``),

.. math::
    \log \pi_k \mathcal N(x_n \mid \mu_k, \Sigma_k) = \log \pi_k
        - \tfrac12 \big(d \log 2\pi + \lVert U_k^\top (x_n - \mu_k) \rVert^2\big)
        + \sum_i \log (U_k)_{ii}.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ..components.covariance_types import lookup


def weighted_log_density(x, weights, means, prec_chol, covariance_type: str) -> np.ndarray:
    r""":math:`\log \pi_k \mathcal N(x_n \mid \mu_k, \Sigma_k)`, shape ``(n, k)``, from scikit-learn's
    fitted attributes (``prec_chol`` in any of its four shapes)."""
    d, kind = x.shape[1], lookup(covariance_type)
    if kind.matrix:
        factors = np.broadcast_to(prec_chol, (len(means), d, d))  # tied: one factor for every k
        # one component at a time: memory n x d, as scikit-learn's
        squares = np.stack([np.square((x - m) @ u).sum(axis=1) for m, u in zip(means, factors)], axis=1)
        log_det = np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
    else:
        precisions = np.broadcast_to(kind.per_feature(np.square(prec_chol)), means.shape)  # (k, d)
        squares = np.stack([(np.square(x - m) * p).sum(axis=1) for m, p in zip(means, precisions)], axis=1)
        log_det = 0.5 * np.log(precisions).sum(axis=1)
    with np.errstate(divide="ignore"):  # a component of weight 0 has density 0
        log_weights = np.log(weights)
    return log_weights - 0.5 * (float(d * np.log(2 * np.pi)) + squares) + log_det


def mixture_outputs(x, weights, means, prec_chol, covariance_type: str):
    """``(score_samples, predict_proba, predict)`` of the rows of ``x``."""
    log_rho = weighted_log_density(x, weights, means, prec_chol, covariance_type)
    log_norm = logsumexp(log_rho, axis=1)
    return log_norm, np.exp(log_rho - log_norm[:, None]), np.argmax(log_rho, axis=1)
