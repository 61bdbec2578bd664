"""Chunked evaluation of functions that return sums over observations.

An E-step returns statistics that are sums over rows, so it can run over fixed-size chunks of the
rows inside ``lax.scan`` and add the per-chunk results: temporary memory is bounded by one chunk,
whatever the number of rows. Rows added to fill the last chunk carry weight 0 and contribute
nothing (models must treat a zero weight as an exact removal).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

#: Elements of temporary memory one chunk may use, summed over everything vmapped above it.
DEFAULT_CHUNK_BUDGET = 1 << 21
MIN_CHUNK = 128


def n_rows(data) -> int:
    return jax.tree_util.tree_leaves(data)[0].shape[0]


def choose_chunk_size(n: int, work_per_row: int, batch: int = 1,
                      budget: int = DEFAULT_CHUNK_BUDGET) -> int:
    """Rows per chunk so that ``chunk * work_per_row * batch <= budget`` (at least MIN_CHUNK).

    Returns ``n`` when all rows fit in one chunk. Chunks are balanced so that padding is less
    than the number of chunks.
    """
    per_chunk = max(MIN_CHUNK, budget // max(1, work_per_row * batch))
    if per_chunk >= n:
        return n
    n_chunks = math.ceil(n / per_chunk)
    return math.ceil(n / n_chunks)


def pad_rows(data, weights, chunk_size: int):
    """Pads the leading axis of every leaf of ``data`` and of ``weights`` to a multiple of
    ``chunk_size``; padded rows repeat row 0 (valid values) and get weight 0."""
    n = n_rows(data)
    pad = (-n) % chunk_size
    if pad == 0:
        return data, weights

    def pad_leaf(x):
        fill = jnp.broadcast_to(x[:1], (pad,) + x.shape[1:])
        return jnp.concatenate([x, fill], axis=0)

    data = jax.tree_util.tree_map(pad_leaf, data)
    weights = jnp.concatenate([weights, jnp.zeros((pad,), weights.dtype)])
    return data, weights


def chunked_sum(fn, data, weights, chunk_size: int):
    """``sum_c fn(data[c], weights[c])`` over row chunks ``c``, with ``lax.scan``.

    ``fn`` returns a pytree of sums over its rows. ``data`` and ``weights`` must already be padded
    to a multiple of ``chunk_size`` (see :func:`pad_rows`).
    """
    n = n_rows(data)
    if chunk_size >= n:
        return fn(data, weights)
    n_chunks = n // chunk_size
    split = lambda x: x.reshape((n_chunks, chunk_size) + x.shape[1:])
    chunks = (jax.tree_util.tree_map(split, data), split(weights))
    shapes = jax.eval_shape(fn, jax.tree_util.tree_map(lambda x: x[0], chunks[0]), chunks[1][0])
    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def add_chunk(total, chunk):
        part = fn(*chunk)
        return jax.tree_util.tree_map(jnp.add, total, part), None

    total, _ = jax.lax.scan(add_chunk, zeros, chunks)
    return total
