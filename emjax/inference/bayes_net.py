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

an einsum over the per-row factors :math:`\phi_{nv}` of shape ``(n, *family)``. Childless variables
are summed out first, all leaves that share their parents and cardinality in one batched message
over the parents; the remaining factors and messages are contracted pairwise in a fixed order
(``opt_einsum``'s greedy path, planned once per network): variable elimination, with the row axis
kept in every intermediate. Every factor and every
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
    """How one row's likelihood is contracted, and its memory.

    Attributes:
        inner: variables with children: one factor ``(n, *family)`` each.
        leaf_groups: childless variables grouped by (parents, cardinality): each group is summed
            over its leaves at once into one message ``(n, *parents)`` (cheap to compile).
        steps: ``(positions, subscripts)`` per pairwise contraction of the inner factors, then the
            messages: the operands popped from the list (in this order) and the einsum applied to
            them; the result is appended.
        row_symbol: the einsum symbol of the row axis.
        largest_per_row: elements of the largest factor or intermediate tensor, per row.
        work_per_row: elements of all factors and intermediates, forward and reverse, per row.
    """

    inner: tuple
    leaf_groups: tuple
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
    with_children = {p for ps in parents for p in ps}
    inner = tuple(v for v in range(n_vars) if v in with_children)
    groups: dict = {}
    for v in range(n_vars):
        if v not in with_children:
            groups.setdefault((parents[v], cardinalities[v]), []).append(v)
    leaf_groups = tuple(map(tuple, groups.values()))
    axes = [family(parents, v) for v in inner] + [parents[g[0]] for g in leaf_groups]
    symbol = opt_einsum.get_symbol
    row = symbol(n_vars)
    inputs = [row + "".join(symbol(u) for u in a) for a in axes]
    shapes = [(_PLAN_ROWS, *(cardinalities[u] for u in a)) for a in axes]
    _, info = opt_einsum.contract_path(",".join(inputs) + "->" + row, *shapes, shapes=True,
                                       optimize="greedy")
    steps = tuple((tuple(step[0]), step[2]) for step in info.contraction_list)
    stacked = [len(g) * math.prod(cardinalities[u] for u in family(parents, g[0])) for g in leaf_groups]
    factors = [math.prod(shape) // _PLAN_ROWS for shape in shapes] + stacked
    largest = max([-(-int(info.largest_intermediate) // _PLAN_ROWS)] + factors)
    work = 2 * (sum(factors) + -(-sum(int(s) for s in info.size_list) // _PLAN_ROWS))
    return ContractionPlan(inner, leaf_groups, steps, row, largest, work)


def _agrees(data, axes, cardinalities):
    """``(n, *cards of axes)`` booleans: the values agree with the row's evidence (-1: any)."""
    n = data.shape[0]
    mask = jnp.ones((n,) + (1,) * len(axes), bool)
    for i, u in enumerate(axes):
        shape = [n] + [1] * len(axes)
        shape[i + 1] = cardinalities[u]
        x = data[:, u, None]
        mask = mask & ((x == jnp.arange(cardinalities[u])) | (x < 0)).reshape(shape)
    return mask


def _scaled_exp(log_values, mask):
    """``exp(log_values)`` where ``mask`` (else 0), divided by its largest entry in each row;
    and the log of that scale, ``(n,)``. The scale is a constant for differentiation (the
    product of result and scale does not depend on it, so gradients stay exact)."""
    masked = jnp.where(mask, log_values, -jnp.inf)
    scale = jnp.max(masked, axis=tuple(range(1, masked.ndim)))
    scale = jax.lax.stop_gradient(jnp.where(jnp.isfinite(scale), scale, 0))
    shift = scale.reshape((-1,) + (1,) * (masked.ndim - 1))
    # -inf outside the mask (not a where after exp): no inf * 0 in the reverse pass
    return jnp.exp(jnp.where(mask, log_values - shift, -jnp.inf)), scale


def _rescaled(x, row_axis: int, log_scale):
    """``x`` divided by its largest entry in each row; the log of that added to ``log_scale``
    (a constant for differentiation, as in :func:`_scaled_exp`)."""
    axes = tuple(a for a in range(x.ndim) if a != row_axis)
    peak = jnp.max(x, axis=axes, keepdims=True) if axes else x
    peak = jax.lax.stop_gradient(jnp.where(peak > 0, peak, 1))
    return x / peak, log_scale + jnp.log(jnp.reshape(peak, (-1,)))


def _row_log_table(log_tables, soft_evidence, v, n, shape):
    """``log T_v`` of shape ``shape`` (the family's), plus soft evidence along ``v``'s axis when
    given, as ``(n, *shape)``."""
    if soft_evidence is None:
        return jnp.broadcast_to(log_tables[v], (n, *shape))
    return log_tables[v][None] + soft_evidence[v].reshape((n,) + (1,) * (len(shape) - 1) + shape[-1:])


def _leaf_log_message(log_tables, data, group, parents, cardinalities, soft_evidence):
    r""":math:`\sum_{l} \log \sum_{x_l} T_l[pa, x_l] 1[x_l \text{ agrees}]`: the log-message of a
    group of childless variables sharing their parents, ``(n, *parent cards)``."""
    n, pa = data.shape[0], parents[group[0]]
    shape = tuple(cardinalities[u] for u in family(parents, group[0]))
    log_t = jnp.stack([_row_log_table(log_tables, soft_evidence, v, n, shape) for v in group], axis=1)
    x = data[:, list(group), None]                                            # (n, L, 1)
    seen = (x == jnp.arange(shape[-1])) | (x < 0)
    seen = seen.reshape((n, len(group)) + (1,) * len(pa) + shape[-1:])
    masked = jnp.where(seen, log_t, -jnp.inf)
    peak = jax.lax.stop_gradient(jnp.max(masked, axis=-1, keepdims=True))
    peak = jnp.where(jnp.isfinite(peak), peak, 0)
    total = jnp.sum(jnp.exp(masked - peak), axis=-1)                          # (n, L, *pa)
    log_total = jnp.where(total > 0, jnp.log(jnp.where(total > 0, total, 1)), -jnp.inf)
    return jnp.sum(log_total + peak[..., 0], axis=1)


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
    for v in plan.inner:
        fam = family(parents, v)
        shape = tuple(cardinalities[u] for u in fam)
        log_table = _row_log_table(log_tables, soft_evidence, v, n, shape)
        factor, scale = _scaled_exp(log_table, _agrees(data, fam, cardinalities))
        operands.append(factor)
        log_scale = log_scale + scale
    for group in plan.leaf_groups:
        message = _leaf_log_message(log_tables, data, group, parents, cardinalities, soft_evidence)
        factor, scale = _scaled_exp(message, _agrees(data, parents[group[0]], cardinalities))
        operands.append(factor)
        log_scale = log_scale + scale
    for i, (positions, subscripts) in enumerate(plan.steps):
        result = jnp.einsum(subscripts, *[operands.pop(p) for p in positions], precision=EXACT)
        if i < len(plan.steps) - 1:  # rescale every intermediate; the last is (n,)
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
