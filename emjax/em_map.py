r"""The EM map as plain functions: the objective of given parameters and one EM update.

For parameters :math:`\theta`, data :math:`x` and row weights :math:`w`, :func:`evaluate` gives the
E-step's summed statistics and the monitored objective
:math:`f(\theta) = \big(\sum_i w_i \log p(x_i \mid \theta) + \log p(\theta)\big) / \sum_i w_i`,
and :func:`em_update` is the EM map :math:`F(\theta) = \text{M-step}(\text{E-step}(\theta))`.
The driver iterates them; implicit differentiation linearises them at the fixed point.
"""
from __future__ import annotations

from .chunking import chunked_sum


def evaluate(model, params, data, weights, chunk_size: int):
    """``(stats, mean log-likelihood, objective)`` of ``params`` (one chunked E-step)."""
    dtype = weights.dtype
    total_weight = weights.sum()
    stats, loglik = chunked_sum(lambda x, w: model.e_step(params, x, w), data, weights, chunk_size)
    loglik = loglik.astype(dtype)
    objective = (loglik + model.log_prior(params).astype(dtype)) / total_weight
    return stats, loglik / total_weight, objective


def em_update(model, stats, params, data, weights):
    """New parameters from the E-step's ``stats`` at ``params`` (the model's M-step)."""
    return model.m_step_with_data(stats, params, data, weights)


def em_map(model, params, data, weights, chunk_size: int):
    r"""One EM iteration :math:`F(\theta)`: an E-step at ``params`` followed by the M-step."""
    stats = evaluate(model, params, data, weights, chunk_size)[0]
    return em_update(model, stats, params, data, weights)
