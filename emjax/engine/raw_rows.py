r"""Fitting data in the user's units: the standardising transform applied chunk by chunk.

A model whose standardisation is additive passes over the rows
(:meth:`~emjax.core.model.Model.standardizes_in_chunks`) is fitted without a standardised copy of the
data. The transform :math:`T` (e.g. :math:`T(x) = (x - \text{shift}) / \text{scale}`) is computed
by chunked passes, and :class:`OnRawRows` is the same model reading raw rows:

.. math::
    \text{e\_step}_{\text{raw}}(\theta, x_c, w_c) = \text{e\_step}(\theta, T(x_c), w_c)

for every chunk :math:`x_c` the engine reads, so beyond the data only one chunk's worth of
standardised rows exists at a time. The transform is an array leaf of the wrapper (a pytree), so
implicit differentiation (:mod:`emjax.engine.implicit`) sees its dependence on the data.
"""
from __future__ import annotations

from typing import Any

import jax

from ..core.model import Model, join_hyperparameters, split_hyperparameters
from .sharding import row_sum


def chunked_transform(model, data, weights, chunk_size: int, rows=None):
    """``(transform, log_jacobian)`` from the model's ``transform_stats`` passes, each summed over
    row chunks (and devices, with ``rows``: :func:`emjax.engine.sharding.row_sum`)."""
    totals = ()
    for _ in range(model.transform_passes()):
        stats = lambda previous, x, w: model.transform_stats(x, w, previous)
        totals += (row_sum(stats, totals, data, weights, chunk_size, rows),)
    return model.transform_from_stats(totals)


def fit_coordinates(model, data, weights, chunk_size: int, rows=None):
    """``(model', data', transform, log_jacobian)``: what the driver iterates on.

    With chunk-wise standardisation ``data'`` is ``data`` itself and ``model'`` an
    :class:`OnRawRows`; otherwise ``data'`` is ``model.standardize``'s result (a copy when the
    model standardises) and ``model'`` is ``model``.
    """
    if model.standardizes_in_chunks():
        transform, log_jacobian = chunked_transform(model, data, weights, chunk_size, rows)
        return OnRawRows(model, transform), data, transform, log_jacobian
    data, transform, log_jacobian = model.standardize(data, weights)
    return model, data, transform, log_jacobian


@jax.tree_util.register_pytree_node_class
class OnRawRows(Model):
    """``model`` with its data given in the user's units: rows are standardised by ``transform``
    as each method reads them. Parameters stay in the standardised coordinates."""

    def __init__(self, model, transform: Any):
        self.model, self.transform = model, transform

    def tree_flatten(self):
        static, hyperparameters = split_hyperparameters(self.model)
        return (self.transform, hyperparameters), static

    @classmethod
    def tree_unflatten(cls, static, children):
        transform, hyperparameters = children
        return cls(join_hyperparameters(static, hyperparameters), transform)

    def _standard(self, data):
        return self.model.apply_transform(data, self.transform)

    def init(self, key, data, weights):
        return self.model.init_from_raw(key, data, weights, self.transform)

    def e_step(self, params, data, weights):
        return self.model.e_step(params, self._standard(data), weights)

    def m_step(self, stats, params):
        return self.model.m_step(stats, params)

    def m_step_with_data(self, stats, params, data, weights):
        return self.model.m_step_with_data(stats, params, self._standard(data), weights)

    def log_prob(self, params, data):
        return self.model.log_prob(params, self._standard(data))

    def posterior(self, params, data):
        return self.model.posterior(params, self._standard(data))

    def log_prior(self, params):
        return self.model.log_prior(params)

    def loglik_terms(self, loglik):
        return self.model.loglik_terms(loglik)

    def is_degenerate(self, params):
        return self.model.is_degenerate(params)

    def restate_stats(self, stats, params_from, params_to):
        return self.model.restate_stats(stats, params_from, params_to)

    def work_per_row(self, data) -> int:
        return self.model.work_per_row(data)

    def to_unconstrained(self, params):
        return self.model.to_unconstrained(params)

    def from_unconstrained(self, u):
        return self.model.from_unconstrained(u)
