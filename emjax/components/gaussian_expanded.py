r"""Expanded ("feature form") Gaussian E-steps, and the rounding guard that decides when to use them.

Expanding the quadratic form turns a Gaussian E-step into two matrix products with long
contractions. With the features

.. math::
    f(x) = [\,x_c x_e \ (c \le e),\ x,\ 1\,] \ \text{(full, tied)}, \qquad
    f(x) = [\,x^2,\ x,\ 1\,] \ \text{(diag, spherical)},

the log-densities of all components are one product :math:`\log \mathcal N(x_n \mid m_k,
\Sigma_k) = f(x_n) \cdot w_k` with :math:`w_k` built from :math:`P_k = U_k U_k^\top`:
:math:`-\tfrac12 (2 - \delta_{ce}) P_{k,ce}` on :math:`x_c x_e`, :math:`P_k m_k` on
:math:`x`, and :math:`\log|U_k| - \tfrac d2 \log 2\pi - \tfrac12 m_k^\top P_k m_k` on 1; and
every statistic is one product :math:`\sum_n r_{kn} f(x_n)`: counts, sums and second moments about
zero, moved to the reference means by :func:`emjax.components.gaussian.scatter_about_means`.
Everything is taken about :func:`origin` :math:`o`, the coordinate-wise median of the component means (rows :math:`x - o`,
means :math:`m_k - o`: the Gaussian is unchanged), and :math:`x`, :math:`m_k` below are those
shifted values.

**Rounding.** Both routes cancel large terms. For component :math:`k` let :math:`s_{kc} =
\sqrt{P_{k,cc}}` (the precisions' diagonal, so :math:`\lvert P_{k,ce}\rvert \le s_{kc} s_{ke}`)
and

.. math::
    A_k = \tfrac12 \max_n \bigl(s_k \cdot \lvert x_n\rvert + s_k \cdot \lvert m_k\rvert\bigr)^2
    \ \text{(full, tied)}, \qquad A_k = \sum_d p_{kd}\,(X_d^2 + m_{kd}^2) \ \text{(diag, spherical)},

over the rows of the chunk, with :math:`X_d^2 = \max_n x_{nd}^2`. The terms of
:math:`\tfrac12 (x^\top P x - 2 x^\top P m + m^\top P m)` weigh :math:`\lvert x_c x_e\rvert`,
:math:`\lvert x_c m_e\rvert` and :math:`\lvert m_c m_e\rvert` by at most :math:`s_c s_e`, so their
absolute values sum to at most :math:`A_k` (and :math:`A_k \le \operatorname{tr}(P_k)\,(\lVert
x\rVert^2 + \lVert m_k\rVert^2)`). A feature that is constant in the data (and so in
every mean: zero about :math:`o` up to rounding) adds next to nothing, however large its
precision: its variance floor does not send the fit to the exact forms. A length-``F`` dot product, plus the rounding of the
entries of :math:`P_k`, :math:`P_k m_k` and of the features, then bounds the log-density's error
by :math:`(F + d + 2)\,\epsilon A_k` (Higham's :math:`\gamma_n`, first order). Second moments
about zero moved to the means leave an error of at most about :math:`\epsilon \sum_n r_{kn}
\lvert x_n\rvert \lvert x_n\rvert^\top` (and the same in :math:`m_k`) in each entry; whitened by
:math:`P_k` (the covariance's own scale) that is of order :math:`\epsilon A_k` relative to the
scatter too. The exact forms (from differences :math:`x - m_k`) err by
:math:`\epsilon` times the result instead.

**Guard.** :func:`expansion_error` is :math:`G = \epsilon \max_k A_k`. The expanded forms are
used when :math:`G \le` :data:`MAX_EXPANSION_ERROR` :math:`= 10^{-3}`. The worst case
:math:`(F + d + 2) G` is far from what happens: rounding errors of random sign partly cancel in
the blocked sums, and few rows reach the maximum. On standardised W2- and W3-like data (20,000 rows,
float64 reference, fitted parameters), :math:`G \le 4\cdot 10^{-4}` (the figure of the earlier
trace bound, :math:`\epsilon \max_k \operatorname{tr}(P_k)(X^2 + \lVert m_k\rVert^2)`, which
:math:`A_k` never exceeds) while the largest
log-density error is :math:`4\cdot 10^{-5}` (:math:`\approx 0.1\,G`, as large as the exact
form's) and the mean error :math:`5\cdot 10^{-7}`. At the threshold the responsibilities are then
accurate to about :math:`10^{-4}`, covariances to :math:`10^{-3}` relative (which moves the
objective by second order only, the M-step being a maximum), and the mean log-likelihood, a mean
of errors of random sign, by far less than the driver's decrease tolerance
:math:`256\epsilon(1 + |f|) \approx 3\cdot 10^{-5}(1 + |f|)` in float32. Tight components far
from the origin (standard deviation 0.03 at distance 1 in 16 dimensions: :math:`G \approx 0.1`)
or features nearly constant within components away from zero (digits: :math:`p \sim 10^6`)
keep the exact forms. In float64,
:math:`\epsilon` is :math:`2^{29}` times smaller: the expanded forms are used unless the data
are about nine orders of magnitude worse scaled, and then err by at most :math:`10^{-12}`.

**Batching.** A model chooses with ``lax.cond`` per chunk, and only while its formulation
(``unbatched``, from the fit's :class:`emjax.core.plan.Plan`) says the program traces one restart
without a batch axis (:func:`emjax.fit` with ``n_init=1``): under ``vmap`` a per-restart predicate turns the
``cond`` into a ``select`` that computes both forms, so batched restarts keep the exact forms.
"""
from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np

from . import gaussian as g
from .covariance_types import lookup

#: The largest :func:`expansion_error` for which the expanded forms are used (module docstring).
MAX_EXPANSION_ERROR = 1e-3

_mm = functools.partial(jnp.matmul, precision=g.EXACT)


def n_features(d: int, covariance_type: str) -> int:
    """Length ``F`` of :func:`features` for ``d`` dimensions."""
    quadratic = d * (d + 1) // 2 if lookup(covariance_type).matrix else d
    return quadratic + d + 1


def origin(means):
    """The point ``o`` ``(d,)`` the expanded forms are taken about: the coordinate-wise median of
    the component means (every function here shifts rows and means by it, ``x - o`` and
    ``m_k - o``). A feature that is constant in the data, and so in every mean, is then zero up to
    rounding in every row and mean, whatever its standardised value, and the guard (module
    docstring) ignores it. The median, not the mean: one component far from the data (an empty
    one, say) would pull a mean away from every row, and the expansion's rounding grows with the
    rows' distance from ``o``."""
    return jnp.median(means, axis=0)


def features(x, covariance_type: str, about):
    """``f(x - about)`` feature-major, shape ``(F, n)``: products :math:`x_c x_e` for :math:`c \\le
    e` in row-major upper-triangle order (full, tied) or squares (diag, spherical), then ``x``,
    then 1, of the rows shifted by ``about`` (:func:`origin` of the means)."""
    x = x - about
    if lookup(covariance_type).matrix:
        xt = x.T
        rows, cols = _upper_indices(x.shape[-1])
        quadratic = xt[rows] * xt[cols]  # whole rows of the transposed chunk gathered: on CPU
        # faster than gathering columns of (n, F) features (W2's 11,112-row chunk 0.9 against
        # 1.45 ms; its whole E-step 4-9% faster, quiet AMD EPYC, alternating)
        return jnp.concatenate([quadratic, xt, jnp.ones((1,) + x.shape[:1], x.dtype)], axis=0)
    f = jnp.concatenate([x * x, x, jnp.ones(x.shape[:1] + (1,), x.dtype)], axis=1)
    return f.T  # built row-major (a transposed build is 4x slower); the products below take
    # the transpose into their operand layout


def _precisions(prec_chol, covariance_type: str, k: int, d: int):
    """Per-component precisions: ``(k, d, d)`` matrices (full, tied) or diagonals ``(k, d)``."""
    kind = lookup(covariance_type)
    if kind.matrix:
        u = jnp.broadcast_to(prec_chol, (k, d, d))
        return _mm(u, jnp.swapaxes(u, -1, -2))
    u = kind.per_feature(prec_chol)
    return jnp.broadcast_to(jnp.square(u), (k, d))


def log_density_weights(means, prec_chol, covariance_type: str):
    """``W`` ``(k, F)`` with :math:`\\log \\mathcal N(x \\mid m_k, \\Sigma_k) = f(x - o) \\cdot
    W_k`, ``o`` the :func:`origin` of ``means``."""
    k, d = means.shape
    kind = lookup(covariance_type)
    means = means - origin(means)
    prec = _precisions(prec_chol, kind, k, d)
    log_det = jnp.broadcast_to(kind.log_det(prec_chol, d), (k,))
    if kind.matrix:
        pm = jnp.einsum("kce,ke->kc", prec, means, precision=g.EXACT)
        rows, cols = _upper_indices(d)
        quadratic = np.where(rows == cols, -0.5, -1.0).astype(prec.dtype) * prec[:, rows, cols]
    else:
        pm = prec * means
        quadratic = -0.5 * prec
    const = log_det - 0.5 * d * math.log(2 * math.pi) - 0.5 * jnp.sum(means * pm, axis=1)
    return jnp.concatenate([quadratic, pm, const[:, None]], axis=1)


def _upper_indices(d: int):
    """Row and column indices ``(d(d+1)/2,)`` of the upper triangle in :func:`features`' order."""
    return np.triu_indices(d)


def _symmetric_positions(d: int):
    """``(d, d)`` positions in :func:`features`' upper triangle of the entries ``(c, e)`` and
    ``(e, c)`` of a symmetric matrix."""
    rows, cols = _upper_indices(d)
    positions = np.empty((d, d), np.int32)
    positions[rows, cols] = positions[cols, rows] = np.arange(rows.size)
    return positions


def log_density(f, weights):
    """Log-densities ``(k, n)`` from features ``f`` ``(F, n)`` and :func:`log_density_weights`."""
    return _mm(weights, f)


def sufficient_stats(f, resp, ref, covariance_type: str):
    """:func:`emjax.components.gaussian.sufficient_stats` from features ``f`` ``(F, n)``: one
    product ``resp @ f.T`` gives counts, sums and second moments about :func:`origin` ``o`` of
    ``ref`` (``f`` taken about it), which are then moved to ``ref`` (second moments of a tied
    model are summed over components first)."""
    d = ref.shape[1]
    about = origin(ref)
    totals = _mm(resp, f.T)  # (k, F)
    counts, shifted, quadratic = totals[:, -1], totals[:, -1 - d:-1], totals[:, :-1 - d]
    sums = shifted + counts[:, None] * about
    kind = lookup(covariance_type)
    if kind.matrix:
        second = quadratic[:, _symmetric_positions(d)]  # one gather (unrolling the d^2 entries
        # as slices took XLA ~2 s to compile per copy of the E-step)
        if kind.shared:
            second = jnp.sum(second, axis=0)
    else:
        second = quadratic
    return counts, sums, g.scatter_about_means(counts, shifted, second, jnp.zeros_like(ref),
                                               ref - about, kind)


def expansion_error(x, means, prec_chol, covariance_type: str):
    r"""The guard's :math:`G = \epsilon \max_k A_k` for the rows ``x`` of a chunk, about
    :func:`origin` (module docstring): the expanded log-densities err by at most
    :math:`(F + d + 2) G` nats, the second moments by about :math:`G` relative. NaN parameters
    give NaN."""
    k, d = means.shape
    eps = jnp.finfo(x.dtype).eps
    about = origin(means)
    x, means = x - about, means - about
    kind = lookup(covariance_type)
    if kind.matrix:
        scale = jnp.broadcast_to(jnp.sqrt(jnp.sum(jnp.square(prec_chol), axis=-1)), (k, d))
        reach = jnp.max(_mm(jnp.abs(x), scale.T), axis=0) + jnp.sum(scale * jnp.abs(means), axis=1)
        largest = 0.5 * jnp.square(reach)
    else:
        prec = _precisions(prec_chol, kind, k, d)
        largest = jnp.sum(prec * (jnp.max(x * x, axis=0) + means * means), axis=1)
    return eps * jnp.max(largest)


def expansion_is_accurate(x, means, prec_chol, covariance_type: str):
    """Whether :func:`expansion_error` is at most :data:`MAX_EXPANSION_ERROR` (False for NaN)."""
    return expansion_error(x, means, prec_chol, covariance_type) <= MAX_EXPANSION_ERROR
