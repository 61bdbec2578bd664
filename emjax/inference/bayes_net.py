r"""Exact inference in a discrete Bayesian network, batched over rows, by tensor contraction.

A network over variables :math:`x_0, \dots, x_{V-1}` (variable ``v`` takes values
``0..c_v - 1``) with parents :math:`\mathrm{pa}(v)` has the joint

.. math::
    p(x) = \prod_v T_v[x_{\mathrm{pa}(v)}, x_v].

A row of data observes some variables (value ``-1`` marks a missing one). Its likelihood is the sum
of the joint over all completions of the row,

.. math::
    p(e_n) = \sum_x \prod_v T_v[x_{\mathrm{pa}(v)}, x_v]\, \prod_{u \in \mathrm{fam}(v)} 1[x_u
    \text{ agrees with } e_{nu}],

one einsum over the per-row *factors* ``(n, *family)``, contracted along an elimination order
(``opt_einsum``'s greedy path, fixed once per network): variable elimination, with the row axis kept
in every intermediate. Each factor is divided by its largest entry consistent with the evidence and
the logarithm of that scale is added back, so rows whose families are fully observed are exact in
log space and products of many small probabilities do not underflow.

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
        path: ``opt_einsum`` contraction path over the factors (one per variable).
        largest_per_row: elements of the largest intermediate tensor, per row.
        work_per_row: elements of all factors and intermediates, forward and reverse, per row.
    """

    path: tuple
    largest_per_row: int
    work_per_row: int


def family(parents, v: int) -> tuple:
    """Axes of variable ``v``'s table: its parents, then ``v`` itself."""
    return (*parents[v], v)


def family_subscripts(parents, n_vars: int) -> str:
    """einsum subscripts ``"n<family of 0>,n<family of 1>,...->n"`` of the row likelihood."""
    symbol = opt_einsum.get_symbol
    row = symbol(n_vars)
    inputs = [row + "".join(symbol(u) for u in family(parents, v)) for v in range(n_vars)]
    return ",".join(inputs) + "->" + row


def plan_contraction(parents, cardinalities) -> ContractionPlan:
    """Greedy elimination order for the row likelihood einsum, and its memory per row."""
    n_vars = len(cardinalities)
    shapes = [(_PLAN_ROWS, *(cardinalities[u] for u in family(parents, v))) for v in range(n_vars)]
    path, info = opt_einsum.contract_path(family_subscripts(parents, n_vars), *shapes, shapes=True,
                                          optimize="greedy")
    factors = [math.prod(shape) for shape in shapes]
    largest = max([int(info.largest_intermediate)] + factors)
    work = 2 * (sum(factors) + sum(int(s) for s in info.size_list))
    return ContractionPlan(tuple(map(tuple, path)), -(-largest // _PLAN_ROWS), -(-work // _PLAN_ROWS))


def _evidence(data, v: int, card: int):
    """``(n, card)`` booleans: value ``k`` of variable ``v`` agrees with the row (always if -1)."""
    x = data[:, v, None]
    return (x == jnp.arange(card)) | (x < 0)


def _scaled_factor(log_table, data, fam, cardinalities):
    """Row factor ``T_v`` masked by the evidence and scaled to a maximum of 1, and its log scale.

    ``log_table`` has shape ``(*family)`` or ``(n, *family)``.
    """
    n = data.shape[0]
    mask = jnp.ones((n,) + (1,) * len(fam), bool)
    for axis, u in enumerate(fam):
        shape = [n] + [1] * len(fam)
        shape[axis + 1] = cardinalities[u]
        mask = mask & _evidence(data, u, cardinalities[u]).reshape(shape)
    axes = tuple(range(1, len(fam) + 1))
    log_table = jnp.broadcast_to(log_table, mask.shape)
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
    n_vars = len(cardinalities)
    operands, log_scale = [], 0
    for v in range(n_vars):
        fam = family(parents, v)
        log_table = log_tables[v]
        if soft_evidence is not None:
            log_table = log_table[None] + soft_evidence[v].reshape(
                (data.shape[0],) + (1,) * (len(fam) - 1) + (cardinalities[v],))
        factor, scale = _scaled_factor(log_table, data, fam, cardinalities)
        operands.append(factor)
        log_scale = log_scale + scale
    contracted = jnp.einsum(family_subscripts(parents, n_vars), *operands, optimize=list(plan.path),
                            precision=EXACT)
    return jnp.log(contracted) + log_scale


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
