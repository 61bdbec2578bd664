"""Choosing starting centres from data: k-means++, random rows, Lloyd refinement. Pure JAX,
one restart at a time (vmap or ``lax.map`` over keys for many)."""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from ..core.chunking import choose_chunk_size, chunk_start, chunked_sum
from .gaussian import sum_of_squares


def squared_distances(x, centres):
    """``|x_n - c_k|^2`` as ``(n, k)`` by matrix products, clipped at 0."""
    d2 = jnp.sum(x * x, axis=1)[:, None] - 2 * jnp.matmul(x, centres.T, precision=jax.lax.Precision.HIGHEST) + jnp.sum(centres * centres, axis=1)
    return jnp.maximum(d2, 0)


def _identity(rows):
    return rows


#: Rows per block of the two-level draw in :func:`_sample_rows` (at least sqrt(n)).
SAMPLE_BLOCK = 1 << 14
#: Draws of :func:`_sample_rows` evaluated side by side (each reads one block of rows).
DRAW_BATCH = 256
#: k-means++ seeds from a subsample of ``max(SEED_ROWS, SEED_ROWS_PER_COMPONENT * k)`` rows when
#: the data have more rows than that and more than ``SEED_VALUES`` values (see
#: :func:`seeding_rows`).
SEED_ROWS = 1 << 13
SEED_ROWS_PER_COMPONENT = 512
SEED_VALUES = 1 << 20
#: Folded into a restart's key to draw its k-means++ subsample.
SUBSAMPLE_STREAM = 0x5EED


def draws_ignore_padding(method: str, n_rows: int) -> bool:
    """Whether :func:`starting_responsibilities` by ``method`` draws the same start from data
    padded to ``n_rows`` by rows of weight 0 as from the data alone: "random" draws per row
    index; k-means++ (and "kmeans") inverts the cumulative weight over all rows in one block,
    where trailing rows of weight 0 are never reached, while ``n_rows`` is within
    ``SEED_ROWS`` (no subsample) and ``SAMPLE_BLOCK``. "random_from_data" draws over the row
    count."""
    return method != "random_from_data" and n_rows <= min(SEED_ROWS, SAMPLE_BLOCK)


def _sample_rows(key, weights, score, shape, block: int | None = None):
    """Rows drawn with probability proportional to ``weights * score`` (``weights`` alone when
    ``score`` is None or every score is 0, e.g. all rows identical).

    Inverts the cumulative mass in two levels: a block of rows is drawn with probability
    proportional to its total mass, then a row within it. Each draw reads one block, so beyond
    ``weights`` and ``score`` only O(n / block + block * DRAW_BATCH) memory is used, whatever
    ``shape``; a row of zero mass is never drawn. ``block`` defaults to
    ``max(sqrt(n), SAMPLE_BLOCK)`` rows (few draws); many draws want blocks of about sqrt(n).
    """
    weights, score = jax.lax.stop_gradient((weights, score))  # indices carry no derivative
    n = weights.shape[0]
    block = min(n, max(math.isqrt(n), SAMPLE_BLOCK) if block is None else max(1, block))

    def window(b, use_score):
        """``(start, mass)`` of block ``b``: the window is moved back to end at the last row, and
        rows before the block get no mass."""
        first = b * block
        start = jnp.minimum(first, n - block)
        w = jax.lax.dynamic_slice_in_dim(weights, start, block)
        if score is not None:
            w = jnp.where(use_score, w * jax.lax.dynamic_slice_in_dim(score, start, block), w)
        return start, jnp.where(start + jnp.arange(block) >= first, w, 0)

    # block totals with and without the score (a sum over all rows at once would, under vmap,
    # make the CPU runtime hold several row-sized temporaries)
    both = jax.lax.map(lambda b: (jnp.sum(window(b, True)[1]), jnp.sum(window(b, False)[1])),
                       jnp.arange(-(-n // block)))
    use_score = jnp.sum(both[0]) > 0
    totals = jnp.where(use_score, *both)
    ends = jnp.cumsum(totals)
    u = jax.random.uniform(key, shape, ends.dtype) * ends[-1]

    def draw(u):
        b = _invert_cdf(ends, u)
        start, mass = window(b, use_score)
        return start + _invert_cdf(jnp.cumsum(mass), u - (ends[b] - totals[b]))

    flat = u.reshape(-1)
    if flat.size <= DRAW_BATCH:  # a few draws (k-means++ candidates): no loop
        return jax.vmap(draw)(flat).reshape(shape)
    return jax.lax.map(draw, flat, batch_size=DRAW_BATCH).reshape(shape)


def _invert_cdf(cdf, u):
    """First index ``i`` with ``cdf[i] > u``, for ``u`` clipped into ``[0, cdf[-1])``: an index
    whose increment is positive, even where rounding puts ``u`` at or past the total."""
    u = jnp.clip(u, 0, jnp.nextafter(cdf[-1], jnp.zeros_like(cdf[-1])))
    return jnp.searchsorted(cdf, u, side="right")


def _distances_to(x, centre):
    """``|x_n - c|^2`` from differences (exact for rows near ``c``), shape ``(n,)``."""
    return sum_of_squares(x - centre, axis=-1)


def seeding_rows(key, x, weights, k: int, to_fit_units=_identity):
    """``(rows, weights)`` that k-means++ seeds ``k`` centres from, in fit units.

    With ``limit = max(SEED_ROWS, SEED_ROWS_PER_COMPONENT * k)``: up to ``limit`` rows or
    ``SEED_VALUES`` values, all rows with their weights (mapped by ``to_fit_units`` once: a copy
    of at most that size). Beyond: ``limit`` rows drawn with replacement with probability
    proportional to their weight, each of weight 1 (the same distribution in expectation; a row
    of weight 0 is never drawn). Small data keep all rows, where drawing would cost more than it
    saves.
    """
    n, d = x.shape
    limit = max(SEED_ROWS, SEED_ROWS_PER_COMPONENT * k)
    if n <= limit or n * d <= SEED_VALUES:
        return to_fit_units(x), weights
    idx = _sample_rows(key, weights, None, (limit,), block=math.isqrt(n))
    return to_fit_units(x[idx]), jnp.ones((limit,), weights.dtype)


def kmeans_plusplus(key, x, weights, k: int, to_fit_units=_identity):
    r"""Greedy k-means++ (Arthur & Vassilvitskii 2007): each new centre is the best of
    ``2 + log k`` candidates drawn with probability proportional to ``w_n D(x_n)^2``.

    Seeds come from :func:`seeding_rows`: all rows when there are at most
    ``max(SEED_ROWS, SEED_ROWS_PER_COMPONENT * k)`` of them (or few values), otherwise that
    many rows drawn by weight. Seeding costs ``(k - 1)(3 + log k)`` passes over its rows, so on
    large data the subsample is what keeps it cheap; the starting assignment and every EM step
    still read all rows. The size was chosen on W3's shape (100,000 x 64, ``k = 32``, diag, 20
    EM steps, 24 seeds over two datasets): with 512 rows per component (16,384 rows, the init
    3.3x cheaper) the final log-likelihoods matched those of seeding on all rows (mean -91.772
    against -91.783, seed-to-seed spread 0.15); with 256 they were 0.06 lower. The rows are
    mapped by ``to_fit_units`` (e.g. standardisation) once, not on every pass. The candidates'
    potentials :math:`\sum_n w_n \min(D(x_n)^2, |x_n - c|^2)` are summed over row chunks.
    """
    n_trials = 2 + int(math.log(k))
    # the subsample's key is folded in, so data seeded from all rows keep the draws of before
    rows, weights = seeding_rows(jax.random.fold_in(key, SUBSAMPLE_STREAM), x, weights, k, to_fit_units)
    first_key, key = jax.random.split(key)
    m, d = rows.shape
    first = rows[_sample_rows(first_key, weights, None, (1,))[0]]
    centres = jnp.zeros((k, d), rows.dtype).at[0].set(first)
    chunk = choose_chunk_size(m, n_trials * (d + 2))

    def potentials(chunk_rows, w, candidates):
        xr, closest = chunk_rows
        trial = jnp.minimum(closest, jax.vmap(_distances_to, (None, 0))(xr, candidates))
        return trial @ w  # (t,)

    def add_centre(carry, inputs):
        centres, closest = carry
        i, step_key = inputs
        candidates = rows[_sample_rows(step_key, weights, closest, (n_trials,))]
        pot = chunked_sum(lambda r, w: potentials(r, w, candidates), (rows, closest), weights, chunk)
        best = candidates[jnp.argmin(pot)]
        return (centres.at[i].set(best), _closer(rows, closest, best, chunk)), None

    keys = jax.random.split(key, k - 1)
    carry = (centres, _closer(rows, jnp.full((m,), jnp.inf, rows.dtype), first, chunk))
    (centres, _), _ = jax.lax.scan(add_centre, carry, (jnp.arange(1, k), keys))
    return centres


def _closer(x, closest, centre, chunk: int):
    """``min(closest_n, |x_n - centre|^2)``, updated in place chunk by chunk (the last chunk is
    moved back to end at the last row; taking a minimum twice changes nothing)."""
    n = x.shape[0]

    def update(i, closest):
        start = chunk_start(i, chunk, n)
        rows = jax.lax.dynamic_slice_in_dim(x, start, chunk)
        near = jnp.minimum(jax.lax.dynamic_slice_in_dim(closest, start, chunk), _distances_to(rows, centre))
        return jax.lax.dynamic_update_slice_in_dim(closest, near, start, 0)

    return jax.lax.fori_loop(0, -(-n // chunk), update, closest)


def random_rows(key, x, weights, k: int, to_fit_units=_identity):
    """``k`` distinct rows drawn with probability proportional to their weight (mapped by
    ``to_fit_units``)."""
    idx = jax.random.choice(key, x.shape[0], (k,), replace=False, p=weights / jnp.sum(weights))
    return to_fit_units(x[idx])


def lloyd(x, weights, centres, n_iter: int, to_fit_units=_identity):
    """``n_iter`` weighted k-means (Lloyd) steps over row chunks; an empty cluster keeps its
    centre. ``to_fit_units`` as in :func:`kmeans_plusplus`."""
    k, d = centres.shape
    chunk = choose_chunk_size(x.shape[0], 2 * k + d)

    def sums(centres, rows, w):
        rows = to_fit_units(rows)
        onehot = nearest_responsibilities(rows, centres) * w  # (k, chunk)
        return onehot @ rows, jnp.sum(onehot, axis=1)

    def step(_, centres):
        total, mass = chunked_sum(functools.partial(sums, centres), x, weights, chunk)
        new = total / jnp.where(mass > 0, mass, 1)[:, None]
        return jnp.where(mass[:, None] > 0, new, centres)

    return jax.lax.fori_loop(0, n_iter, step, centres)


def nearest_responsibilities(x, centres):
    """One-hot ``(k, n)`` assignment of each row to its nearest centre."""
    labels = jnp.argmin(squared_distances(x, centres), axis=1)
    return jax.nn.one_hot(labels, centres.shape[0], dtype=x.dtype, axis=0)


#: Lloyd steps of the "kmeans" start.
LLOYD_STEPS = 10


def starting_responsibilities(key, x, weights, k: int, method: str, to_fit_units=_identity):
    """``(centres, responsibilities)`` of one restart's start by ``method``.

    ``responsibilities(rows, row_index)`` gives ``(k, len(rows))`` starting responsibilities of
    the given rows, already in fit units (``row_index`` their positions, so chunks of the data
    draw the same values as the whole): uniform draws normalised per row for "random"
    (``centres`` are then zeros), otherwise a one-hot assignment to the nearest of ``k`` centres
    chosen by "random_from_data" (random rows), "kmeans++" (greedy k-means++) or "kmeans"
    (k-means++ then ``LLOYD_STEPS`` Lloyd steps). Centres are chosen among the rows of ``x``
    mapped by ``to_fit_units`` (see :func:`kmeans_plusplus`).
    """
    if method == "random":
        def responsibilities(rows, row_index):
            draw = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i), (k,), x.dtype))
            resp = draw(row_index).T
            return resp / jnp.sum(resp, axis=0)
        return jnp.zeros((k, x.shape[1]), x.dtype), responsibilities
    if method == "random_from_data":
        centres = random_rows(key, x, weights, k, to_fit_units)
    else:
        centres = kmeans_plusplus(key, x, weights, k, to_fit_units)
    if method == "kmeans":
        centres = lloyd(x, weights, centres, LLOYD_STEPS, to_fit_units)
    return centres, lambda rows, row_index: nearest_responsibilities(rows, centres)
