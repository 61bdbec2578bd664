r"""Exact inference in a discrete Bayesian network, batched over rows, by tensor contraction.

A network over variables :math:`x_0, \dots, x_{V-1}` (variable ``v`` takes values
``0..c_v - 1``) with parents :math:`\mathrm{pa}(v)` has the joint

.. math::
    p(x) = \prod_v T_v[x_{\mathrm{pa}(v)}, x_v].

A row of data observes some variables (value ``-1`` marks a missing one). Its likelihood sums the
joint over all completions of the row,

.. math::
    p(e_n) = \sum_x \prod_v \phi_{nv}[x_{\mathrm{fam}(v)}], \qquad
    \phi_{nv}[f] = T_v[f]\, \prod_{u \in \mathrm{fam}(v)} 1[f_u \text{ agrees with } e_{nu}],

an einsum over the per-row factors :math:`\phi_{nv}` of shape ``(n, *family)``. It runs as a fixed
sequence of pairwise contractions (``opt_einsum``'s greedy order, planned once per network):
variable elimination, with the row axis kept in every intermediate. Every factor and every
intermediate is divided by its largest entry in each row and the logarithms of those scales are
added back, so the likelihood stays in log space: rows of thousands of observed variables do not
underflow float32.

The expected family counts are the gradient of the log-likelihood with respect to the log tables,
:math:`\partial \log p(e_n) / \partial \log T_v[f] = p(x_{\mathrm{fam}(v)} = f \mid e_n)`, so one
reverse pass gives every posterior family marginal.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import opt_einsum

from ..components.gaussian import EXACT

#: Rows used to plan the contraction; every intermediate keeps the row axis, so per-row sizes
#: (and the greedy order) do not depend on it.
_PLAN_ROWS = 8


class ContractionPlan(NamedTuple):
    """A fixed elimination order and its per-row memory.

    Attributes:
        steps: ``(positions, subscripts)`` per pairwise contraction: the operands popped from the
            list (in this order) and the einsum applied to them; the result is appended.
        row_symbol: the einsum symbol of the row axis.
        largest_per_row: elements of the largest factor or intermediate tensor, per row.
        work_per_row: elements of all factors and intermediates, forward and reverse, per row.
    """

    steps: tuple
    row_symbol: str
    largest_per_row: int
    work_per_row: int


def family(parents, v: int) -> tuple:
    """Axes of variable ``v``'s table: its parents, then ``v`` itself."""
    return (*parents[v], v)


def plan_contraction(parents, cardinalities) -> ContractionPlan:
    """Greedy elimination order for the row likelihood einsum, and its memory per row."""
    n_vars = len(cardinalities)
    symbol = opt_einsum.get_symbol
    row = symbol(n_vars)
    inputs = [row + "".join(symbol(u) for u in family(parents, v)) for v in range(n_vars)]
    shapes = [(_PLAN_ROWS, *(cardinalities[u] for u in family(parents, v))) for v in range(n_vars)]
    _, info = opt_einsum.contract_path(",".join(inputs) + "->" + row, *shapes, shapes=True,
                                       optimize="greedy")
    steps = tuple((tuple(step[0]), step[2]) for step in info.contraction_list)
    factors = [math.prod(shape) for shape in shapes]
    largest = max([int(info.largest_intermediate)] + factors)
    work = 2 * (sum(factors) + sum(int(s) for s in info.size_list))
    return ContractionPlan(steps, row, -(-largest // _PLAN_ROWS), -(-work // _PLAN_ROWS))


def _rescaled(x, row_axis: int, log_scale):
    """``x`` divided by its largest entry in each row; the log of that added to ``log_scale``.

    The scale is a constant for differentiation: the result times the scale is unchanged, so
    gradients of the final log-likelihood are exact.
    """
    axes = tuple(a for a in range(x.ndim) if a != row_axis)
    peak = jnp.max(x, axis=axes, keepdims=True) if axes else x
    peak = jax.lax.stop_gradient(jnp.where(peak > 0, peak, 1))
    return x / peak, log_scale + jnp.log(jnp.reshape(peak, (-1,)))


def _row_factor(log_table, data, fam, cardinalities):
    """Row factor ``T_v`` masked by the evidence, ``(n, *family)``, scaled to a maximum of 1; and
    the log of the scale. ``log_table`` has shape ``(*family)`` or ``(n, *family)``."""
    n = data.shape[0]
    mask = jnp.ones((n,) + (1,) * len(fam), bool)
    for axis, u in enumerate(fam):
        shape = [n] + [1] * len(fam)
        shape[axis + 1] = cardinalities[u]
        x = data[:, u, None]
        mask = mask & ((x == jnp.arange(cardinalities[u])) | (x < 0)).reshape(shape)
    log_table = jnp.broadcast_to(log_table, mask.shape)
    axes = tuple(range(1, len(fam) + 1))
    scale = jnp.max(jnp.where(mask, log_table, -jnp.inf), axis=axes)
    scale = jax.lax.stop_gradient(jnp.where(jnp.isfinite(scale), scale, 0))
    shift = scale.reshape((n,) + (1,) * len(fam))
    # -inf outside the evidence (not a where after exp): no inf * 0 in the reverse pass
    return jnp.exp(jnp.where(mask, log_table - shift, -jnp.inf)), scale


def row_log_likelihood(log_tables, data, parents, cardinalities, plan: ContractionPlan,
                       soft_evidence=None):
    r""":math:`\log p(e_n)` for every row, shape ``(n,)``.

    Args:
        log_tables: per variable, the log table ``(*parent cards, c_v)``.
        data: int ``(n, V)``, ``-1`` where a value is missing.
        parents, cardinalities: the network (tuples of static ints).
        plan: :func:`plan_contraction` of the network.
        soft_evidence: optional per-variable ``(n, c_v)`` log-weights added to ``T_v``'s last axis
            (zero leaves the likelihood unchanged; their gradient is the posterior marginal).
    """
    n = data.shape[0]
    operands, log_scale = [], jnp.zeros((n,), log_tables[0].dtype)
    for v in range(len(cardinalities)):
        fam = family(parents, v)
        log_table = log_tables[v]
        if soft_evidence is not None:
            log_table = log_table[None] + soft_evidence[v].reshape(
                (n,) + (1,) * (len(fam) - 1) + (cardinalities[v],))
        factor, scale = _row_factor(log_table, data, fam, cardinalities)
        operands.append(factor)
        log_scale = log_scale + scale
    for i, (positions, subscripts) in enumerate(plan.steps):
        result = jnp.einsum(subscripts, *[operands.pop(p) for p in positions], precision=EXACT)
        if i < len(plan.steps) - 1:
            row_axis = subscripts.split("->")[1].index(plan.row_symbol)
            result, log_scale = _rescaled(result, row_axis, log_scale)
        operands.append(result)
    return jnp.log(operands[0]) + log_scale


def expected_family_counts(tables, data, weights, parents, cardinalities, plan: ContractionPlan):
    r"""Weighted log-likelihood and expected family counts.

    Returns ``(counts, loglik)`` with ``counts[v][f] = sum_n w_n p(x_fam(v) = f | e_n)`` (same
    shapes as ``tables``) and ``loglik = sum_n w_n log p(e_n)``. A row of weight 0 contributes
    exactly nothing (it is treated as fully missing).
    """
    keep = weights > 0
    data = jnp.where(keep[:, None], data, -1)

    def total(log_tables):
        ll = row_log_likelihood(log_tables, data, parents, cardinalities, plan)
        return jnp.sum(jnp.where(keep, weights * ll, 0))

    log_tables = tuple(jnp.log(t) for t in tables)
    loglik, counts = jax.value_and_grad(total)(log_tables)
    return counts, loglik


def variable_marginals(tables, data, parents, cardinalities, plan: ContractionPlan):
    """Posterior marginals :math:`p(x_v = k \\mid e_n)`: per variable an ``(n, c_v)`` array."""
    log_tables = tuple(jnp.log(t) for t in tables)
    dtype = log_tables[0].dtype
    zeros = tuple(jnp.zeros((data.shape[0], c), dtype) for c in cardinalities)
    total = lambda soft: jnp.sum(row_log_likelihood(log_tables, data, parents, cardinalities, plan, soft))
    return jax.grad(total)(zeros)
