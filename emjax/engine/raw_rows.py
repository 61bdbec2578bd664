r"""Fitting data in the user's units: the standardising transform applied chunk by chunk.

A model whose standardisation is additive passes over the rows
(a :class:`~emjax.core.standardizer.RowStandardizer`) is fitted without a standardised copy of the
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

from ..core.model import Model, delegate, join_hyperparameters, split_hyperparameters
from ..core.standardizer import RowStandardizer, pass_totals, standardizer_of
from .sharding import row_sum


def chunked_transform(standardizer: RowStandardizer, data, weights, chunk_size: int, rows=None):
    """``(transform, log_jacobian)`` from the standardiser's passes, each summed over row chunks
    (and devices, with ``rows``: :func:`emjax.engine.sharding.row_sum`)."""
    stats = lambda previous, x, w: standardizer.stats(x, w, previous)
    sum_over_rows = lambda previous: row_sum(stats, previous, data, weights, chunk_size, rows)
    return standardizer.from_stats(pass_totals(standardizer, sum_over_rows))


def fit_coordinates(model, data, weights, chunk_size: int, rows=None):
    """``(model', data', transform, log_jacobian)``: what the driver iterates on.

    With a :class:`~emjax.core.standardizer.RowStandardizer` that has passes, ``data'`` is ``data``
    itself and ``model'`` an :class:`OnRawRows`; otherwise ``data'`` is the standardiser's
    ``standardize`` result (a copy when the model standardises) and ``model'`` is ``model``.
    """
    standardizer = standardizer_of(model)
    if isinstance(standardizer, RowStandardizer) and standardizer.passes() > 0:
        transform, log_jacobian = chunked_transform(standardizer, data, weights, chunk_size, rows)
        return OnRawRows(model, transform), data, transform, log_jacobian
    data, transform, log_jacobian = standardizer.standardize(data, weights)
    return model, data, transform, log_jacobian


@jax.tree_util.register_pytree_node_class
@delegate("model", Model, "m_step", "log_prior", "loglik_terms", "is_degenerate", "restate_stats",
          "work_per_row", "to_unconstrained", "from_unconstrained")
class OnRawRows(Model):
    """``model`` with its data given in the user's units: rows are standardised by ``transform``
    (of the model's :class:`~emjax.core.standardizer.RowStandardizer`) as each method that reads
    rows reads them; the other methods are the model's. Parameters stay in the standardised
    coordinates."""

    def __init__(self, model, transform: Any):
        self.model, self.transform = model, transform

    @property
    def _standardizer(self):
        """Asked of the model when used, never at unflattening (where JAX may pass placeholder
        leaves for the model's hyperparameters)."""
        return self.model.standardizer()

    def tree_flatten(self):
        static, hyperparameters = split_hyperparameters(self.model)
        return (self.transform, hyperparameters), static

    @classmethod
    def tree_unflatten(cls, static, children):
        transform, hyperparameters = children
        return cls(join_hyperparameters(static, hyperparameters), transform)

    def _standard(self, data):
        return self._standardizer.apply(data, self.transform)

    def init(self, key, data, weights):
        return self._standardizer.init_from_raw(self.model, key, data, weights, self.transform)

    def e_step(self, params, data, weights):
        return self.model.e_step(params, self._standard(data), weights)

    def m_step_with_data(self, stats, params, data, weights):
        return self.model.m_step_with_data(stats, params, self._standard(data), weights)

    def log_prob(self, params, data):
        return self.model.log_prob(params, self._standard(data))

    def posterior(self, params, data):
        return self.model.posterior(params, self._standard(data))
