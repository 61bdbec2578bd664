r"""Cholesky factors and triangular solves written in JAX operations, without LAPACK calls.

jaxlib's CPU LAPACK kernels split a batch of matrices over XLA's intra-op thread pool and wait
for the pieces on a pool thread. When as many such calls run at once as the pool has threads
(a fit program holds several independent ones: two are enough on a 2-core machine), every
thread waits for work that none is free to run, and the program hangs (issue "Trust", F3:
a 2-restart fit of 100 x 500 rows hung in about one of three runs). These functions compute
the same factorizations with ordinary array operations, vectorised over any leading batch axes,
so emjax's programs hold no LAPACK call that can split over the pool. Small matrices are no
exception: LAPACK's batches split above 200,000 flops (``batch d^3``), which the many tiny
matrices of batched restarts pass (iris, ``GaussianMixture(3)``, ``n_init=10_000``: 30,000
matrices of 4 x 4; that fit hung on its first run with two ``strsm`` calls waiting on each other),
and under ``vmap`` the batch is not visible here, so every size takes the loop (for W1's 2 x 2
matrices LAPACK had been a third less CPU per fit). Not covered: the least-squares solve of
implicit gradients (:mod:`emjax.engine.implicit`), a LAPACK call in gradient programs only.

Column ``j`` of the Cholesky factor :math:`L` of :math:`A` (left-looking, as LAPACK's unblocked
``potf2``):

.. math::
    v = A_{:, j} - L_{:, <j} L_{j, <j}^T, \qquad L_{jj} = \sqrt{v_j}, \qquad
    L_{ij} = v_i / L_{jj} \ (i > j),

and forward substitution solves :math:`L X = B` row by row,
:math:`X_i = (B_i - L_{i, <i} X_{<i}) / L_{ii}`. Both take :math:`O(d^3)` work in ``d`` steps of a
``lax.fori_loop``. Up to :data:`UNROLLED_D` dimensions the ``d`` steps are unrolled into
straight-line array operations instead (one fused loop over the batch, no ``while`` whose
per-step overhead is most of the cost for 2 x 2 matrices: W1's 256 restarts of d=2). A matrix
that is not positive definite gives NaN (a non-positive pivot), as ``jnp.linalg.cholesky`` does.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

#: Matrices of at most this many dimensions are factorised and solved in unrolled steps.
UNROLLED_D = 4


def _matvec(m, v):
    """``m @ v`` over leading batch axes, ``(..., r, c) x (..., c) -> (..., r)``, as an
    elementwise product and sum: exact float arithmetic on every backend, and one fused loop for
    the many tiny matrices of batched restarts (where a batched ``dot_general`` is slow on CPU)."""
    return jnp.sum(m * v[..., None, :], axis=-1)


def cholesky(a):
    """Lower-triangular :math:`L` with :math:`L L^T = A` for ``a`` ``(..., d, d)`` (only its lower
    triangle is read); NaN where ``a`` is not positive definite."""
    d = a.shape[-1]
    rows = jnp.arange(d)
    if d <= UNROLLED_D:
        columns = []
        for j in range(d):
            v = a[..., :, j]
            for p in range(j):
                v = v - columns[p] * columns[p][..., j:j + 1]
            pivot = jnp.sqrt(v[..., j:j + 1])  # NaN for a non-positive pivot
            columns.append(jnp.where(rows > j, v / pivot, jnp.where(rows == j, pivot, 0)))
        return jnp.stack(columns, axis=-1)

    def column(j, chol):
        v = jnp.take(a, j, axis=-1) - _matvec(chol, jnp.take(chol, j, axis=-2))
        pivot = jnp.sqrt(jnp.take(v, j, axis=-1))  # NaN for a non-positive pivot
        col = jnp.where(rows > j, v / pivot[..., None], jnp.where(rows == j, pivot[..., None], 0))
        return chol + col[..., :, None] * (rows == j).astype(a.dtype)

    return jax.lax.fori_loop(0, d, column, jnp.zeros_like(a))


def solve_lower(chol, b):
    """:math:`X` with :math:`L X = B` for lower-triangular ``chol`` ``(..., d, d)`` and ``b``
    ``(..., d, m)`` (forward substitution)."""
    d = chol.shape[-1]
    rows = jnp.arange(d)
    if d <= UNROLLED_D:
        solved = []
        for i in range(d):
            xi = b[..., i, :]
            for p in range(i):
                xi = xi - chol[..., i, p:p + 1] * solved[p]
            solved.append(xi / chol[..., i, i:i + 1])
        return jnp.broadcast_to(jnp.stack(solved, axis=-2), jnp.broadcast_shapes(
            chol.shape[:-2], b.shape[:-2]) + b.shape[-2:]).astype(jnp.result_type(chol, b))

    def row(i, x):
        li = jnp.take(chol, i, axis=-2)  # (..., d): zeros above the diagonal
        xi = (jnp.take(b, i, axis=-2) - jnp.sum(li[..., :, None] * x, axis=-2)) \
            / jnp.take(li, i, axis=-1)[..., None]
        return x + (rows == i).astype(b.dtype)[:, None] * xi[..., None, :]

    x = jnp.zeros(jnp.broadcast_shapes(chol.shape[:-2], b.shape[:-2]) + b.shape[-2:],
                  jnp.result_type(chol, b))
    return jax.lax.fori_loop(0, d, row, x)


def triangular_inverse(chol):
    """:math:`L^{-1}` of lower-triangular ``chol`` ``(..., d, d)``."""
    eye = jnp.eye(chol.shape[-1], dtype=chol.dtype)
    return solve_lower(chol, jnp.broadcast_to(eye, chol.shape))


def cho_solve(chol, b):
    """:math:`A^{-1} B` from the Cholesky factor ``chol`` of :math:`A` (two triangular solves)."""
    return solve_lower_transposed(chol, solve_lower(chol, b))


def solve_lower_transposed(chol, b):
    """:math:`X` with :math:`L^T X = B` (back substitution)."""
    flip = lambda m: jnp.flip(m, axis=(-2, -1))
    return jnp.flip(solve_lower(flip(jnp.swapaxes(chol, -1, -2)), jnp.flip(b, axis=-2)), axis=-2)
