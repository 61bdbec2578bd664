r"""Information criteria for choosing the number of components.

.. math::
    \mathrm{BIC} = -2 \sum_n w_n \log p(x_n \mid \hat\theta) + p \log \sum_n w_n, \qquad
    \mathrm{AIC} = -2 \sum_n w_n \log p(x_n \mid \hat\theta) + 2p,

with ``p`` the model's number of free parameters (lower is better, as in scikit-learn).
"""
from __future__ import annotations

import functools

import jax.numpy as jnp

from ..core.tree import is_traced
from ..core.validation import check_model, prepare_inputs, require_method
from ..core.xla_options import jit


def _total_log_likelihood(model, params, data, weights, call: str):
    """``(sum_n w_n log p(x_n), sum_n w_n)``; concrete ``data``, ``weights`` and ``params`` are
    checked as in :func:`emjax.fit` (``params`` against the model and the data)."""
    check_model(model, "bic(model, params, data, weights=None)")
    require_method(model, "n_free_parameters", call)
    data, weights = prepare_inputs(model, data, weights)
    if not is_traced(params, data):
        model.validate_params(params, data)
    return _weighted_sum(params, data, weights, model=model), jnp.sum(weights)


@functools.partial(jit, static_argnames="model")
def _weighted_sum(params, data, weights, *, model):
    return jnp.sum(jnp.where(weights > 0, weights * model.log_prob(params, data), 0))


def bic_from(total_log_likelihood, n_parameters, total_weight):
    """BIC from the summed log-likelihood, the number of free parameters and ``sum_n w_n``."""
    return -2 * total_log_likelihood + n_parameters * jnp.log(total_weight)


def aic_from(total_log_likelihood, n_parameters):
    """AIC from the summed log-likelihood and the number of free parameters."""
    return -2 * total_log_likelihood + 2 * n_parameters


def bic(model, params, data, weights=None):
    """Bayesian information criterion of ``params`` on ``data`` (lower is better).

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> model = emjax.GaussianMixture(2)
        >>> res = emjax.fit(model, X, jax.random.key(0), n_init=4)
        >>> bic, aic = emjax.bic(model, res.params, X), emjax.aic(model, res.params, X)
        >>> round(float(bic - aic), 1)                         # 11 free parameters x (log 272 - 2)
        39.7
    """
    ll, n = _total_log_likelihood(model, params, data, weights, "emjax.bic")
    return bic_from(ll, model.n_free_parameters(params), n)


def aic(model, params, data, weights=None):
    """Akaike information criterion of ``params`` on ``data`` (lower is better).

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> model = emjax.GaussianMixture(2)
        >>> res = emjax.fit(model, X, jax.random.key(0), n_init=4)
        >>> aic, bic = emjax.aic(model, res.params, X), emjax.bic(model, res.params, X)
        >>> bool(aic < bic)                                    # log(272) > 2 per free parameter
        True
    """
    ll, _ = _total_log_likelihood(model, params, data, weights, "emjax.aic")
    return aic_from(ll, model.n_free_parameters(params))
