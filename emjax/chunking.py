"""Chunked evaluation of functions that return sums over observations.

An E-step returns statistics that are sums over rows, so it can run over fixed-size chunks of the
rows inside ``lax.scan`` and add the per-chunk results: temporary memory is bounded by one chunk,
whatever the number of rows.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .tree import float_dtype

#: Elements of temporary memory one chunk may use, summed over everything vmapped above it: on a
#: CPU about the size of the caches; on a GPU or TPU large enough that each chunk fills the device
#: (thousands of tiny chunks would each pay a kernel launch).
CPU_CHUNK_BUDGET = 1 << 21
ACCELERATOR_CHUNK_BUDGET = 1 << 27
MIN_CHUNK = 128


def default_chunk_budget() -> int:
    """The chunk budget for JAX's default backend."""
    return CPU_CHUNK_BUDGET if jax.default_backend() == "cpu" else ACCELERATOR_CHUNK_BUDGET


def n_rows(data) -> int:
    return jax.tree_util.tree_leaves(data)[0].shape[0]


def row_weights(data, weights):
    """``weights``, or, when None, ones ``(n,)`` in the data's float dtype: inside a jitted
    program a broadcast constant, which XLA folds into the chunked passes that read it (a loop
    that captures the whole vector, such as k-means++'s sampling, still materialises it)."""
    if weights is not None:
        return weights
    return jnp.ones((n_rows(data),), float_dtype(data))


def choose_chunk_size(n: int, work_per_row: int, batch: int = 1, budget: int | None = None) -> int:
    """Rows per chunk so that ``chunk * work_per_row * batch <= budget`` (at least MIN_CHUNK);
    ``budget`` defaults to :func:`default_chunk_budget`.

    Returns ``n`` when all rows fit in one chunk. Chunks are balanced: the last one is at most
    one row per chunk shorter than the others.
    """
    budget = default_chunk_budget() if budget is None else budget
    per_chunk = max(MIN_CHUNK, budget // max(1, work_per_row * batch))
    if per_chunk >= n:
        return n
    n_chunks = math.ceil(n / per_chunk)
    return math.ceil(n / n_chunks)


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
