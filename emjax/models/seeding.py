"""Choosing starting centres from data: k-means++, random rows, Lloyd refinement. Pure JAX,
one restart at a time (vmap or ``lax.map`` over keys for many)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..chunking import choose_chunk_size, chunked_sum
from ..components.gaussian import sum_of_squares


def squared_distances(x, centres):
    """``|x_n - c_k|^2`` as ``(n, k)`` by matrix products, clipped at 0."""
    d2 = jnp.sum(x * x, axis=1)[:, None] - 2 * jnp.matmul(x, centres.T, precision=jax.lax.Precision.HIGHEST) + jnp.sum(centres * centres, axis=1)
    return jnp.maximum(d2, 0)


def _sample_rows(key, weights, score, shape):
    """Rows drawn with probability proportional to ``weights * score`` (``weights`` alone when
    every score is 0, e.g. all rows identical), by inverting the cumulative mass: O(n) memory
    whatever ``shape``; a row of zero mass is never drawn."""
    mass = weights * score
    mass = jnp.where(jnp.sum(mass) > 0, mass, weights)
    cdf = jnp.cumsum(mass)
    u = jax.random.uniform(key, shape, cdf.dtype) * cdf[-1]
    return jnp.minimum(jnp.searchsorted(cdf, u, side="right"), mass.shape[0] - 1)


def _distances_to(x, centre):
    """``|x_n - c|^2`` from differences (exact for rows near ``c``), shape ``(n,)``."""
    return sum_of_squares(x - centre, axis=-1)


def kmeans_plusplus(key, x, weights, k: int):
    r"""Greedy k-means++ (Arthur & Vassilvitskii 2007): each new centre is the best of
    ``2 + log k`` candidates drawn with probability proportional to ``w_n D(x_n)^2``.

    The candidates' potentials :math:`\sum_n w_n \min(D(x_n)^2, |x_n - c|^2)` are summed over row
    chunks, so beyond the data only O(n) memory is used.
    """
    n, d = x.shape
    n_trials = 2 + int(math.log(k))
    first_key, key = jax.random.split(key)
    first = x[_sample_rows(first_key, weights, jnp.ones_like(weights), ())]
    centres = jnp.zeros((k, d), x.dtype).at[0].set(first)
    chunk = choose_chunk_size(n, n_trials * (d + 2))

    def potentials(rows, w, candidates):
        xr, closest = rows
        trial = jnp.minimum(closest, jax.vmap(_distances_to, (None, 0))(xr, candidates))  # (t, chunk)
        return trial @ w

    def add_centre(carry, inputs):
        centres, closest = carry
        i, step_key = inputs
        candidates = x[_sample_rows(step_key, weights, closest, (n_trials,))]
        pot = chunked_sum(lambda rows, w: potentials(rows, w, candidates), (x, closest), weights, chunk)
        best = candidates[jnp.argmin(pot)]
        return (centres.at[i].set(best), jnp.minimum(closest, _distances_to(x, best))), None

    keys = jax.random.split(key, k - 1)
    carry = (centres, _distances_to(x, first))
    (centres, _), _ = jax.lax.scan(add_centre, carry, (jnp.arange(1, k), keys))
    return centres


def random_rows(key, x, weights, k: int):
    """``k`` distinct rows drawn with probability proportional to their weight."""
    idx = jax.random.choice(key, x.shape[0], (k,), replace=False, p=weights / jnp.sum(weights))
    return x[idx]


def lloyd(x, weights, centres, n_iter: int):
    """``n_iter`` weighted k-means (Lloyd) steps; an empty cluster keeps its centre."""

    def step(_, centres):
        labels = jnp.argmin(squared_distances(x, centres), axis=1)
        onehot = jax.nn.one_hot(labels, centres.shape[0], dtype=x.dtype) * weights[:, None]
        mass = jnp.sum(onehot, axis=0)
        new = (onehot.T @ x) / jnp.where(mass > 0, mass, 1)[:, None]
        return jnp.where(mass[:, None] > 0, new, centres)

    return jax.lax.fori_loop(0, n_iter, step, centres)


def nearest_responsibilities(x, centres):
    """One-hot ``(k, n)`` assignment of each row to its nearest centre."""
    labels = jnp.argmin(squared_distances(x, centres), axis=1)
    return jax.nn.one_hot(labels, centres.shape[0], dtype=x.dtype, axis=0)


#: Lloyd steps of the "kmeans" start.
LLOYD_STEPS = 10


def starting_responsibilities(key, x, weights, k: int, method: str):
    """``(centres, responsibilities)`` of one restart's start by ``method``.

    ``responsibilities(rows, row_index)`` gives ``(k, len(rows))`` starting responsibilities of
    the given rows (``row_index`` their positions, so chunks of the data draw the same values as
    the whole): uniform draws normalised per row for "random" (``centres`` are then zeros),
    otherwise a one-hot assignment to the nearest of ``k`` centres chosen by "random_from_data"
    (random rows), "kmeans++" (greedy k-means++) or "kmeans" (k-means++ then ``LLOYD_STEPS``
    Lloyd steps).
    """
    if method == "random":
        def responsibilities(rows, row_index):
            draw = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i), (k,), x.dtype))
            resp = draw(row_index).T
            return resp / jnp.sum(resp, axis=0)
        return jnp.zeros((k, x.shape[1]), x.dtype), responsibilities
    if method == "random_from_data":
        centres = random_rows(key, x, weights, k)
    else:
        centres = kmeans_plusplus(key, x, weights, k)
    if method == "kmeans":
        centres = lloyd(x, weights, centres, LLOYD_STEPS)
    return centres, lambda rows, row_index: nearest_responsibilities(rows, centres)
