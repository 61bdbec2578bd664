r"""Derivatives of an EM fit by implicit differentiation at its fixed point.

A ``lax.while_loop`` cannot be reverse-differentiated, and unrolling EM would cost memory per
iteration. Instead, the converged parameters :math:`\theta^*` of data :math:`x`, row weights
:math:`w` and continuous hyperparameters :math:`h` (the array leaves of a pytree model) satisfy

.. math::
    \theta^* = F(\theta^*, x, w, h),

where :math:`F` is one EM iteration (E-step then M-step) in the coordinates the driver runs in
(the model's standardised coordinates; the maps to and from them are differentiated as ordinary
functions). By the implicit function theorem, a tangent :math:`\dot z = (\dot x, \dot w, \dot h)`
moves the fixed point by

.. math::
    \dot\theta = (I - \partial_\theta F)^{-1} \, \partial_z F \, \dot z,

and the objective :math:`f` by :math:`\partial_\theta f \, \dot\theta + \partial_z f \, \dot z`.
This is a ``jax.custom_jvp`` rule whose linear solve is a ``lax.custom_linear_solve``, so forward
mode (``jax.jvp``) and reverse mode (``jax.grad``: JAX transposes the rule and the solve, giving
:math:`(\partial_z F)^\top (I - \partial_\theta F)^{-\top} \bar\theta`) both work, inside ``jit``
and ``vmap``. The loop itself runs once, undifferentiated.

Assumptions: the fit converged to an isolated fixed point, where the spectral radius of
:math:`\partial_\theta F` (the fraction of missing information) is below one. Where they fail,
the derivatives of the parameters are zero, never NaN: a restart with a failure status (its
parameters are not a fixed point), or a linear system without a solution (the least-squares residual is not small,
or the iteration did not reach its tolerance). Directions along which the parameters are not
identified (a common shift of softmax logits: eigenvalue 1 of the Jacobian) are handled by the
dense solve's minimum-norm least squares when the loss does not depend on them. A restart
stopped at ``max_iter`` is differentiated as if converged. ``n_iter``, ``status`` and
``history`` are diagnostics and carry no derivative.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .em_map import em_map, evaluate
from ..core.model import join_hyperparameters, split_hyperparameters
from ..core.status import Status

#: Parameter counts up to this solve the linear system densely (one Jacobian, least squares);
#: larger ones iterate :math:`v \leftarrow b + \partial_\theta F\, v`.
DENSE_MAX_PARAMETERS = 256
#: Most iterations of the iterative solve.
ADJOINT_MAX_ITER = 2000


class _Config(NamedTuple):
    """Static part of a differentiable fit (hashable)."""

    solver: Callable  # run_em(model, params, data, weights, *, max_iter, tol, chunk_size, ...)
    model: Any        # the model's static part (see split_hyperparameters)
    history_length: int  # the solver's history buffer (max_iter itself is traced)
    chunk_size: int
    adjoint: str
    rows: Any = None         # emjax.engine.sharding.RowSharding of the data, or None
    accelerator: Any = None  # as in emjax.em
    monitor: Any = None      # as in emjax.engine.driver.run_em


def with_implicit_gradients(solver, model, params, data, weights, *, max_iter, tol,
                            chunk_size: int, rows=None, accelerator=None, adjoint: str = "auto",
                            history_length: int | None = None, monitor=None):
    """``solver(model, params, data, weights, ...)``'s EM result, differentiable at its fixed point.

    Args:
        solver: the EM loop (:func:`emjax.engine.driver.run_em`); called once, never differentiated.
        model: a model; the array leaves of a pytree model are differentiable hyperparameters.
        params: the starting point (no derivative flows to it: the fixed point does not move).
        data, weights: prepared data (a pytree of rows) and per-row weights; differentiable.
        max_iter, tol, chunk_size, accelerator: as in :func:`emjax.em` (``max_iter`` and ``tol``
            may be traced; then ``history_length``, as in :func:`emjax.engine.driver.run_em`, is needed).
        monitor: passed to the solver (:func:`emjax.engine.driver.run_em`).
        rows: the data's row sharding (:func:`emjax.engine.sharding.row_sharding_of`), or None.
        adjoint: ``"dense"`` (build :math:`\\partial_\\theta F`, least squares), ``"iterative"``
            (fixed-point iteration of the linear system) or ``"auto"`` (dense up to
            ``DENSE_MAX_PARAMETERS`` parameters).

    Returns:
        The solver's ``EMResult``; ``params``, ``objective`` and ``log_likelihood`` carry
        derivatives with respect to ``data``, ``weights`` and the model's hyperparameters.
    """
    if adjoint not in ("auto", "dense", "iterative"):
        raise ValueError(f"adjoint must be 'auto', 'dense' or 'iterative'; got {adjoint!r}.")
    static, hyper = split_hyperparameters(model)
    length = int(max_iter) if history_length is None else history_length
    config = _Config(solver, static, length, chunk_size, adjoint, rows, accelerator, monitor)
    limits = (jnp.asarray(tol, weights.dtype), jnp.asarray(max_iter, jnp.int32))
    return _fixed_point(config, params, data, weights, limits, hyper)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _fixed_point(config: _Config, params, data, weights, limits, hyper):
    model = join_hyperparameters(config.model, hyper)
    tol, max_iter = limits
    return config.solver(model, params, data, weights, max_iter=max_iter, tol=tol,
                         chunk_size=config.chunk_size, rows=config.rows,
                         accelerator=config.accelerator, history_length=config.history_length,
                         monitor=config.monitor)


@_fixed_point.defjvp
def _fixed_point_jvp(config: _Config, primals, tangents):
    _, data, weights, _, hyper = primals
    _, d_data, d_weights, _, d_hyper = tangents
    result = _fixed_point(config, *primals)
    theta = result.params
    ok = (result.status == Status.CONVERGED) | (result.status == Status.MAX_ITER)

    def step(t, x, w, h):
        return em_map(join_hyperparameters(config.model, h), t, x, w, config.chunk_size, config.rows)

    # Masked on both sides: where the run failed, F may be NaN at theta, and its derivative
    # times a zero would still be NaN in one of the two modes (the input mask is what reverse
    # mode sees, the output mask what forward mode sees).
    _, rhs = jax.jvp(lambda x, w, h: step(theta, x, w, h), (data, weights, hyper),
                     _where(ok, (d_data, d_weights, d_hyper)))
    jacobian = lambda v: jax.jvp(lambda t: step(t, data, weights, hyper), (theta,), (v,))[1]
    d_theta = _where(ok, _solve_fixed_point_system(jacobian, rhs, config.adjoint))

    def outputs(t, x, w, h):
        _, loglik, objective = evaluate(join_hyperparameters(config.model, h), t, x, w,
                                        config.chunk_size, config.rows)
        return objective, loglik

    # The objective of a failed run's kept parameters stays differentiable where it is finite;
    # a NaN one gets zero, masked as above.
    finite = jnp.isfinite(result.objective) & jnp.isfinite(result.log_likelihood)
    _, d_outputs = jax.jvp(outputs, (theta, data, weights, hyper),
                           (d_theta, *_where(finite, (d_data, d_weights, d_hyper))))
    d_objective, d_loglik = _where(finite, d_outputs)
    no_derivative = lambda x: np.zeros(np.shape(x), jax.dtypes.float0)
    return result, result._replace(
        params=d_theta, objective=d_objective, log_likelihood=d_loglik,
        n_iter=no_derivative(result.n_iter), status=no_derivative(result.status),
        n_estep=no_derivative(result.n_estep),
        history=jnp.zeros_like(result.history))


def _where(ok, tangents):
    """Tangents where ``ok``, zeros elsewhere (float0 tangents of integer inputs pass through)."""
    keep = lambda t: t if t.dtype == jax.dtypes.float0 else jnp.where(ok, t, jnp.zeros_like(t))
    return jax.tree_util.tree_map(keep, tangents)


def _solve_fixed_point_system(jacobian, rhs, adjoint: str):
    r"""Solves :math:`(I - J) v = b` for the linear map ``jacobian`` (:math:`J`) and ``rhs``
    (:math:`b`) as a ``lax.custom_linear_solve``, so that JAX can transpose it.

    The system is solved on the flattened vector: a leaf of ``b`` that does not depend on the
    tangents (a symbolic zero) would otherwise be a constant that the transpose cannot take.
    """
    flat_rhs, unravel = ravel_pytree(rhs)
    dense = adjoint == "dense" or (adjoint == "auto" and flat_rhs.size <= DENSE_MAX_PARAMETERS)
    solve = _dense_solve if dense else _iterative_solve
    matvec = lambda v: v - ravel_pytree(jacobian(unravel(v)))[0]
    return unravel(jax.lax.custom_linear_solve(matvec, flat_rhs, solve=solve, transpose_solve=solve))


def _finite_or_zero(x, ok):
    return jnp.where(ok & jnp.all(jnp.isfinite(x)), x, jnp.zeros_like(x))


def _dense_solve(matvec, b):
    """Minimum-norm least-squares solve of the matrix of ``matvec`` (SVD), so that a direction
    the parameters are not identified along (e.g. a common shift of softmax logits, eigenvalue 1
    of the EM map's Jacobian) does not make a consistent system fail; zero when the residual is
    not small (the system has no solution)."""
    matrix = jax.vmap(matvec, out_axes=1)(jnp.eye(b.size, dtype=b.dtype))
    x = jnp.linalg.lstsq(matrix, b)[0]
    eps = jnp.finfo(b.dtype).eps
    residual = jnp.linalg.norm(matrix @ x - b)
    scale = jnp.linalg.norm(matrix) * jnp.linalg.norm(x) + jnp.linalg.norm(b)
    return _finite_or_zero(x, residual <= jnp.sqrt(eps) * scale)


def _iterative_solve(matvec, b):
    """Richardson iteration :math:`v \\leftarrow v + b - (I - J) v`, i.e. :math:`v \\leftarrow b + J v`,
    which converges when the spectral radius of :math:`J` is below one; zero if it does not."""
    target = jnp.finfo(b.dtype).eps ** (2 / 3) * jnp.linalg.norm(b)

    def body(carry):
        i, v, residual = carry
        v = v + residual
        return i + 1, v, b - matvec(v)

    def running(carry):
        i, _, residual = carry
        size = jnp.linalg.norm(residual)
        return (i < ADJOINT_MAX_ITER) & (size > target) & jnp.isfinite(size)

    _, v, residual = jax.lax.while_loop(running, body, (jnp.int32(0), b, b - matvec(b)))
    return _finite_or_zero(v, jnp.linalg.norm(residual) <= target)
