r"""Variational factors of mixture weights: a Dirichlet or a truncated stick-breaking prior.

``"dirichlet_distribution"``: :math:`\pi \sim \mathrm{Dir}(\alpha_0 \mathbf 1_K)` and
:math:`q(\pi) = \mathrm{Dir}(\alpha)`, held as ``alpha`` of shape ``(K,)``.

``"dirichlet_process"``: stick-breaking :math:`\pi_k = v_k \prod_{j<k} (1 - v_j)` with
:math:`v_k \sim \mathrm{Beta}(1, \gamma_0)` for ``k = 1..K`` and
:math:`q(v_k) = \mathrm{Beta}(a_k, b_k)`, held as ``(a, b)`` stacked, shape ``(2, K)``. As in
scikit-learn, the last stick is Beta-distributed too, so :math:`\sum_k \pi_k < 1`; the rest is the
mass beyond the truncation.

Given expected counts :math:`N_k` the optimal factors are :math:`\alpha_k = \alpha_0 + N_k`, and
:math:`a_k = 1 + N_k`, :math:`b_k = \gamma_0 + \sum_{j>k} N_j`.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


def update(counts, prior, prior_type: str):
    """The optimal ``q`` factor's parameters for expected counts ``(K,)``."""
    if prior_type == "dirichlet_distribution":
        return prior + counts
    later = jnp.concatenate([jnp.cumsum(counts[::-1])[::-1][1:], jnp.zeros((1,), counts.dtype)])
    return jnp.stack([1 + counts, prior + later])


def expected_log_weights(concentration, prior_type: str):
    r""":math:`\mathbb E_q[\log \pi_k]`, shape ``(K,)``.

    Dirichlet: :math:`\psi(\alpha_k) - \psi(\sum_j \alpha_j)`; stick-breaking:
    :math:`\psi(a_k) - \psi(a_k + b_k) + \sum_{j<k} [\psi(b_j) - \psi(a_j + b_j)]`.
    """
    if prior_type == "dirichlet_distribution":
        psi = digamma(jnp.concatenate([concentration, jnp.sum(concentration, keepdims=True)]))
        return psi[:-1] - psi[-1]
    a, b = concentration
    psi_a, psi_b, psi_total = digamma(jnp.stack([a, b, a + b]))  # one digamma: a smaller program
    log_rest = psi_b - psi_total
    before = jnp.concatenate([jnp.zeros((1,), a.dtype), jnp.cumsum(log_rest)[:-1]])
    return psi_a - psi_total + before


def mean_weights(concentration, prior_type: str):
    """``E_q[pi]`` normalised to sum to one (scikit-learn's ``weights_``)."""
    if prior_type == "dirichlet_distribution":
        return concentration / jnp.sum(concentration)
    a, b = concentration
    rest = b / (a + b)
    before = jnp.concatenate([jnp.ones((1,), a.dtype), jnp.cumprod(rest)[:-1]])
    weights = a / (a + b) * before
    return weights / jnp.sum(weights)


def kl_divergence(concentration, prior, prior_type: str):
    r""":math:`\mathrm{KL}(q(\pi) \,\|\, p(\pi))` (stick-breaking: summed over the ``K`` sticks).

    :math:`\mathrm{KL}(\mathrm{Dir}(\alpha) \| \mathrm{Dir}(\alpha_0)) = \log\Gamma(\textstyle\sum\alpha)
    - \sum\log\Gamma(\alpha) - \log\Gamma(K\alpha_0) + K\log\Gamma(\alpha_0)
    + \sum_k (\alpha_k - \alpha_0)(\psi(\alpha_k) - \psi(\sum\alpha))`;
    :math:`\mathrm{KL}(\mathrm{Beta}(a, b) \| \mathrm{Beta}(1, \gamma_0)) = \log B(1, \gamma_0)
    - \log B(a, b) + (a - 1)\psi(a) + (b - \gamma_0)\psi(b) + (1 + \gamma_0 - a - b)\psi(a + b)`.
    """
    # one lgamma and one digamma over all arguments: each special function is a large expansion,
    # and a single call per kind keeps the compiled program small
    if prior_type == "dirichlet_distribution":
        k = concentration.shape[0]
        args = jnp.concatenate([concentration, jnp.sum(concentration, keepdims=True)])
        log_gamma, psi = gammaln(args), digamma(args)
        return (log_gamma[k] - jnp.sum(log_gamma[:k]) - gammaln(k * prior) + k * gammaln(prior)
                + jnp.sum((concentration - prior) * (psi[:k] - psi[k])))
    a, b = concentration
    log_gamma, psi = gammaln(jnp.stack([a, b, a + b])), digamma(jnp.stack([a, b, a + b]))
    log_beta = log_gamma[0] + log_gamma[1] - log_gamma[2]
    per_stick = (-jnp.log(prior) - log_beta + (a - 1) * psi[0] + (b - prior) * psi[1]
                 + (1 + prior - a - b) * psi[2])
    return jnp.sum(per_stick)
