r"""Row counts rounded up to a few bucketed sizes, so that nearby sizes share one program.

A fit's program is compiled for its data's shape; cross-validation folds (142 and 143 rows) and
a notebook's subsets would each compile again. Data of :math:`n` rows are padded to

.. math::
    N = \lceil n / s \rceil \, s, \qquad s = 2^{\max(0,\; \lfloor \log_2 n \rfloor - 2)},

four sizes per octave (at most 25% more rows), by copies of the first row of weight 0. Every
E-step statistic is a weighted sum, so a row of weight 0 adds exactly zero; the objective is a
mean per unit weight. What remains is the model's ``init``: padding applies only where
``model.init_ignores_padding(N)`` says its random start does not depend on rows of weight 0
(e.g. k-means++ over one block of at most a few thousand rows), and only to data of at most
:data:`MAX_PADDED_ROWS` rows, where compiling costs more than the extra rows.
"""
from __future__ import annotations

import jax
import numpy as np

from ..core.tree import float_dtype

#: Data with more rows are not padded (their fits run longer than they compile).
MAX_PADDED_ROWS = 8192


def bucket_rows(n: int) -> int:
    """The padded row count :math:`N \\ge n` (four sizes per octave)."""
    step = 1 << max(0, n.bit_length() - 3)
    return -(-n // step) * step


def padded_rows(model, data, weights):
    """``(data, weights)`` padded to :func:`bucket_rows` rows of weight 0 when ``model`` allows it
    and the data are small (then ``weights`` is always an array, so that every size in a bucket
    gives the same program); otherwise unchanged. Concrete, unsharded, validated data only."""
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    size = bucket_rows(n)
    if size > MAX_PADDED_ROWS or not model.init_ignores_padding(size):
        return data, weights
    # in NumPy on the host (small data): eager jnp operations would compile for every new n
    dtype = np.dtype(float_dtype(data))
    ones = np.ones((n,), dtype) if weights is None else np.asarray(weights, dtype)
    weights = np.concatenate([ones, np.zeros((size - n,), dtype)])

    def pad(x):
        x = np.asarray(x)
        return jax.device_put(np.concatenate([x, np.broadcast_to(x[:1], (size - n,) + x.shape[1:])]))
    return jax.tree_util.tree_map(pad, data), jax.device_put(weights)
