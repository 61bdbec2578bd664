"""Chunked evaluation of functions that return sums over observations.

An E-step returns statistics that are sums over rows, so it can run over fixed-size chunks of the
rows inside ``lax.scan`` and add the per-chunk results: temporary memory is bounded by one chunk,
whatever the number of rows.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .plan import MIN_CHUNK, choose_chunk_size, default_chunk_budget  # noqa: F401 - re-exported
from .tree import float_dtype


def n_rows(data) -> int:
    return jax.tree_util.tree_leaves(data)[0].shape[0]


def row_weights(data, weights):
    """``weights``, or, when None, ones ``(n,)`` in the data's float dtype: inside a jitted
    program a broadcast constant, which XLA folds into the chunked passes that read it (a loop
    that captures the whole vector, such as k-means++'s sampling, still materialises it)."""
    if weights is not None:
        return weights
    return jnp.ones((n_rows(data),), float_dtype(data))


def chunked_sum(fn, data, weights, chunk_size: int):
    """``sum_c fn(data[c], weights[c])`` over row chunks ``c`` of at most ``chunk_size`` rows.

    ``fn`` returns a pytree of sums over its rows. Full chunks run in a ``lax.scan`` that slices
    the data in place (no padded or reshaped copy); a shorter last chunk is added after it.
    """
    n = n_rows(data)
    if chunk_size >= n:
        return fn(data, weights)

    def take(start, size):
        rows = lambda x: jax.lax.dynamic_slice_in_dim(x, start, size)
        return jax.tree_util.tree_map(rows, data), rows(weights)

    n_full = n // chunk_size
    shapes = jax.eval_shape(fn, *take(0, chunk_size))
    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def add_chunk(total, i):
        return jax.tree_util.tree_map(jnp.add, total, fn(*take(i * chunk_size, chunk_size))), None

    total, _ = jax.lax.scan(add_chunk, zeros, jnp.arange(n_full))
    if n > n_full * chunk_size:
        tail = fn(*take(n_full * chunk_size, n - n_full * chunk_size))
        total = jax.tree_util.tree_map(jnp.add, total, tail)
    return total
