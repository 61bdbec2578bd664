r"""Bayesian network of discrete variables with missing values and latent variables.

Variables are the columns ``0..V-1`` of the data; variable ``v`` takes values ``0..c_v - 1`` and
has a conditional probability table (CPT) :math:`T_v[x_{\mathrm{pa}(v)}, x_v] = p(x_v \mid
x_{\mathrm{pa}(v)})` of shape ``(*parent cardinalities, c_v)``:

.. math::
    p(x) = \prod_v T_v[x_{\mathrm{pa}(v)}, x_v].

A row observes some variables; ``-1`` marks a missing value, and a latent variable is a column that
is ``-1`` in every row. EM maximises :math:`\sum_n w_n \log p(e_n) + \log p(T)`: the E-step is exact
inference per row (:mod:`emjax.inference.bayes_net`) giving expected family counts
:math:`N_v[f] = \sum_n w_n\, p(x_{\mathrm{fam}(v)} = f \mid e_n)`; the M-step is the MAP update
under independent Dirichlet(1 + a) priors on every CPT row,

.. math::
    T_v[\mathrm{pa}, k] = \frac{N_v[\mathrm{pa}, k] + a}{\sum_j N_v[\mathrm{pa}, j] + c_v a},
    \qquad \log p(T) = a \sum_v \sum \log T_v \;(+\text{const}),

so the monitored objective never decreases (with ``a = 0``, a parent configuration that is never
seen keeps its row).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy

from ...inference import bayes_net as bn
from ...core.model import Model
from .structure import canonical_structure, check_cardinalities, topological_order
from ...core.tree import is_traced
from ...core.validation import check_key, check_positive_int, checked_post_fit_data
from .validation import check_categories, check_tables

#: Default bound on the largest intermediate tensor of one row's contraction (elements).
MAX_ELEMENTS_PER_ROW = 1 << 16
#: Weight of the uniform distribution blended into the random Dirichlet(1) starting tables.
INIT_UNIFORM_SHARE = 0.1


class BNParams(NamedTuple):
    """``tables[v]``: the CPT of variable ``v``, shape ``(*parent cardinalities, c_v)``.

    Examples:
        >>> import jax, numpy as np, emjax
        >>> net = emjax.BayesianNetwork({1: 0, 2: 0}, cardinalities=(2, 3, 3), latent=(0,))  # Z -> A, B
        >>> truth = net.init(jax.random.key(1), None, np.ones(1, np.float32))   # random tables
        >>> [t.shape for t in truth.tables]                   # (parent cardinalities..., own)
        [(2,), (2, 3), (2, 3)]
        >>> [float(t.sum(axis=-1).min().round(4)) for t in truth.tables]   # every row sums to one
        [1.0, 1.0, 1.0]
    """

    tables: tuple


@dataclasses.dataclass(frozen=True)
class BayesianNetwork(Model):
    """A discrete Bayesian network fitted by EM with exact inference.

    Args:
        structure: the DAG, as ``{child: parents}`` or a sequence of ``(child, parents)`` pairs;
            variables are column indices, ``parents`` an int or a sequence of ints (the CPT's axis
            order). Variables not listed have no parents. Stored canonically as
            ``((0, parents of 0), (1, parents of 1), ...)``.
        cardinalities: number of values of each variable (the data have this many columns).
        latent: variables declared latent: their columns must be all ``-1``.
        pseudo_count: Dirichlet pseudo-count ``a >= 0`` added to every expected count.
        max_elements_per_row: refuse networks whose exact contraction needs an intermediate larger
            than this many elements per row (E-step memory is about chunk rows x restarts x that).

    Examples:
        >>> import jax, numpy as np, emjax
        >>> net = emjax.BayesianNetwork({1: 0, 2: 0}, cardinalities=(2, 3, 3), latent=(0,))  # Z -> A, B
        >>> truth = net.init(jax.random.key(1), None, np.ones(1, np.float32))   # random tables
        >>> X = np.array(net.sample(jax.random.key(2), truth, 500))
        >>> X[:, 0] = -1                                       # Z is never observed
        >>> res = emjax.fit(net, X, jax.random.key(0), n_init=4)
        >>> [t.shape for t in res.params.tables]               # p(Z), p(A | Z), p(B | Z)
        [(2,), (2, 3), (2, 3)]
    """

    structure: tuple
    cardinalities: tuple
    latent: tuple = ()
    pseudo_count: float = 1.0
    max_elements_per_row: int = MAX_ELEMENTS_PER_ROW

    def __post_init__(self):
        cards = check_cardinalities(self.cardinalities)
        object.__setattr__(self, "cardinalities", cards)
        object.__setattr__(self, "structure", canonical_structure(self.structure, len(cards)))
        latent = tuple(sorted({int(v) for v in np.atleast_1d(np.asarray(self.latent, int))}))
        if any(not 0 <= v < len(cards) for v in latent):
            raise ValueError(f"latent must name variables in 0..{len(cards) - 1}; got {self.latent!r}.")
        object.__setattr__(self, "latent", latent)
        a = self.pseudo_count
        if not isinstance(a, numbers.Real) or not np.isfinite(a) or a < 0:
            raise ValueError(f"pseudo_count must be a finite number >= 0; got {a!r}.")
        bound = self.max_elements_per_row
        if not isinstance(bound, numbers.Integral) or bound < 1:
            raise ValueError(f"max_elements_per_row must be a positive integer; got {bound!r}.")
        if self.plan.largest_per_row > bound:
            raise ValueError(
                f"exact inference in this network needs an intermediate tensor of "
                f"{self.plan.largest_per_row} elements per row (greedy elimination order), above "
                f"max_elements_per_row={bound}; E-step memory would be about chunk rows x restarts "
                f"x that. Use fewer or smaller parent sets, or raise max_elements_per_row.")

    @functools.cached_property
    def plan(self) -> bn.ContractionPlan:
        """Elimination order of the row contraction and its memory per row."""
        return bn.plan_contraction(self.parents, self.cardinalities)

    @property
    def parents(self) -> tuple:
        """``parents[v]``: the parents of variable ``v`` (its CPT's leading axes, in order)."""
        return tuple(ps for _, ps in self.structure)

    @property
    def n_vars(self) -> int:
        return len(self.cardinalities)

    def table_shape(self, v: int) -> tuple:
        return tuple(self.cardinalities[u] for u in bn.family(self.parents, v))

    # ----------------------------------------------------------------- inference
    def log_prob(self, params: BNParams, data):
        """:math:`\\log p(e_n)`: marginal log-likelihood of each row's observed values, ``(n,)``.
        Concrete ``data`` and ``params`` are checked as in :func:`emjax.fit` (so in
        :meth:`posterior`)."""
        data = checked_post_fit_data(self, params, data)
        log_tables = tuple(jnp.log(t) for t in params.tables)
        return bn.row_log_likelihood(log_tables, data, self.parents, self.cardinalities, self.plan)

    def posterior(self, params: BNParams, data):
        """Per variable, :math:`p(x_v = k \\mid e_n)` of shape ``(n, c_v)`` (one-hot where observed)."""
        data = checked_post_fit_data(self, params, data)
        return bn.variable_marginals(params.tables, data, self.parents, self.cardinalities, self.plan)

    def sample(self, key, params: BNParams, n: int):
        """``n`` complete rows drawn by ancestral sampling, int32 ``(n, V)`` (latent columns too)."""
        if not is_traced(key, params):
            key = check_key(key)
            check_positive_int(n, "n")
            self.validate_params(params, None)
        columns = [None] * self.n_vars
        for v in topological_order(self.parents):
            logits = jnp.log(params.tables[v][tuple(columns[u] for u in self.parents[v])])
            logits = jnp.broadcast_to(logits, (n, self.cardinalities[v]))
            columns[v] = jax.random.categorical(jax.random.fold_in(key, v), logits).astype(jnp.int32)
        return jnp.stack(columns, axis=1)

    def n_free_parameters(self, params: BNParams | None = None) -> int:
        """Free probabilities: ``(c_v - 1)`` per row of every table."""
        return sum(math.prod(self.table_shape(v)[:-1]) * (self.cardinalities[v] - 1)
                   for v in range(self.n_vars))

    # ----------------------------------------------------------------- EM contract
    def init(self, key, data, weights) -> BNParams:
        """Random CPT rows: Dirichlet(1) draws (normalised exponentials) blended with the uniform
        row, so every entry is positive. One draw for all tables (cheap to compile)."""
        shapes = [self.table_shape(v) for v in range(self.n_vars)]
        sizes = [math.prod(shape) for shape in shapes]
        draws = jnp.split(jax.random.exponential(key, (sum(sizes),), weights.dtype),
                          np.cumsum(sizes)[:-1].tolist())
        tables = []
        for draw, shape in zip(draws, shapes):
            draw = draw.reshape(shape)
            draw = draw / jnp.sum(draw, axis=-1, keepdims=True)
            tables.append((1 - INIT_UNIFORM_SHARE) * draw + INIT_UNIFORM_SHARE / shape[-1])
        return BNParams(tuple(tables))

    def e_step(self, params: BNParams, data, weights):
        """``(expected family counts per table, weighted log-likelihood)``, summed over rows."""
        return bn.expected_family_counts(params.tables, data, weights, self.parents,
                                         self.cardinalities, self.plan)

    def m_step(self, stats, params: BNParams) -> BNParams:
        """``T_v = (N_v + a) / sum(N_v + a)`` per row; a row with no mass (``a = 0``) is kept."""
        tables = []
        for counts, old in zip(stats, params.tables):
            smoothed = counts + self.pseudo_count
            total = jnp.sum(smoothed, axis=-1, keepdims=True)
            tables.append(jnp.where(total > 0, smoothed / jnp.where(total > 0, total, 1), old))
        return BNParams(tuple(tables))

    def log_prior(self, params: BNParams):
        """``a * sum(log T)`` over all entries: the Dirichlet(1 + a) priors up to a constant."""
        return sum(jnp.sum(xlogy(jnp.asarray(self.pseudo_count, t.dtype), t)) for t in params.tables)

    def work_per_row(self, data) -> int:
        return self.plan.work_per_row

    # ----------------------------------------------------------------- host-side checks
    def validate(self, data):
        return jnp.asarray(check_categories(data, self.cardinalities, self.latent))

    def validate_params(self, params, data) -> None:
        if not isinstance(params, tuple) or len(params) != 1:
            raise TypeError(f"params must be BNParams(tables); got {type(params).__name__}.")
        check_tables(params[0], [self.table_shape(v) for v in range(self.n_vars)], self.parents)
