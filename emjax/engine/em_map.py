r"""The EM map as plain functions: the objective of given parameters and one EM update.

For parameters :math:`\theta`, data :math:`x` and row weights :math:`w`, :func:`evaluate` gives the
E-step's summed statistics and the monitored objective
:math:`f(\theta) = \big(\sum_i w_i \log p(x_i \mid \theta) + \log p(\theta)\big) / \sum_i w_i`,
and :func:`em_update` is the EM map :math:`F(\theta) = \text{M-step}(\text{E-step}(\theta))`.
The driver iterates them; implicit differentiation linearises them at the fixed point.
"""
from __future__ import annotations

from .sharding import row_sum


def objective_of(model, params, loglik, total_weight):
    """``(mean log-likelihood, mean objective)`` per unit weight from the E-step's summed
    ``loglik`` (split by :meth:`emjax.core.model.Model.loglik_terms`)."""
    dtype = total_weight.dtype
    loglik, monitored = (x.astype(dtype) for x in model.loglik_terms(loglik))
    return loglik / total_weight, (monitored + model.log_prior(params).astype(dtype)) / total_weight


def evaluate(model, params, data, weights, chunk_size: int, rows=None):
    """``(stats, mean log-likelihood, objective)`` of ``params``: one E-step over row chunks
    (and, with ``rows``, over the devices holding them: :func:`emjax.engine.sharding.row_sum`)."""
    stats, loglik = row_sum(model.e_step, params, data, weights, chunk_size, rows)
    return (stats, *objective_of(model, params, loglik, weights.sum()))


def em_update(model, stats, params, data, weights):
    """New parameters from the E-step's ``stats`` at ``params`` (the model's M-step)."""
    return model.m_step_with_data(stats, params, data, weights)


def em_map(model, params, data, weights, chunk_size: int, rows=None):
    r"""One EM iteration :math:`F(\theta)`: an E-step at ``params`` followed by the M-step."""
    stats = evaluate(model, params, data, weights, chunk_size, rows)[0]
    return em_update(model, stats, params, data, weights)
