r"""The EM driver: one restart as one ``lax.while_loop``.

Each iteration maps parameters :math:`\theta_t` to

.. math::
    \theta_{t+1} = \arg\max_\theta \; \mathbb{E}_{z \sim p(z \mid x, \theta_t)}
        [\log p(x, z \mid \theta)] + \log p(\theta),

and evaluates the monitored objective
:math:`f(\theta) = \big(\sum_i w_i \log p(x_i \mid \theta) + \log p(\theta)\big) / \sum_i w_i`,
which EM never lowers. Every restart gets an honest :class:`~emjax.core.status.Status`.

A fall of :math:`f` is DECREASED only beyond rounding: more than
``DECREASE_EPS_FACTOR`` :math:`\epsilon\,(1 + |\bar\ell| + |f - \bar\ell|)` below the previous
value, where :math:`\bar\ell` is the mean log-likelihood and :math:`f - \bar\ell` the rest of the
monitored objective (the mean log prior; for tempered EM also the tempering term): the rounding of a sum follows the size of its summands, which can cancel (a prior of
-1e3 against a log-likelihood of +1e3). Models compute their per-row log-densities without
cancelling large terms (e.g. the Poisson density in Loader's form), so the per-row terms add no
more than this.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .accelerate import accelerated_update, check_accelerator
from ..core.chunking import n_rows, row_weights
from .em_map import em_update, evaluate
from .implicit import with_implicit_gradients
from ..core.model import join_hyperparameters, split_hyperparameters
from ..core.plan import Plan, checked_plan, choose_plan
from ..core.standardizer import standardizer_of
from .progress import FitProgress, monitor
from .raw_rows import fit_coordinates
from .result_text import em_result_repr, status_names
from .sharding import RowSharding, local_rows, row_sharding_of
from ..core.status import Status
from ..core.tree import all_finite, float_dtype, is_traced, sliced, tree_select
from ..core.validation import check_fit_options, check_model, prepare_inputs
from ..core.xla_options import jit_per_plan

#: A decrease of the objective larger than this many machine epsilons (times
#: 1 + |log-likelihood| + |log prior|, per unit weight) is reported as DECREASED rather than
#: rounding noise.
DECREASE_EPS_FACTOR = 256

#: The objective history is a buffer of at least this many iterations (see :func:`history_size`).
MIN_HISTORY = 128


def history_size(max_iter: int) -> int:
    """Length of the compiled objective-history buffer for ``max_iter``: the next power of two,
    at least :data:`MIN_HISTORY`. ``max_iter`` itself is a traced value, so every ``max_iter``
    up to 128 (and each power-of-two bucket above) shares one compiled program; results are
    trimmed to ``(max_iter,)`` on the way out (:func:`trim_history`)."""
    return max(MIN_HISTORY, 1 << (int(max_iter) - 1).bit_length())


def trim_history(result, max_iter: int):
    """``result`` (an :class:`EMResult` or :class:`emjax.FitResult`) with every history cut to
    its first ``max_iter`` entries (the buffer is :func:`history_size` long)."""
    def cut(r):
        return r._replace(history=sliced(r.history, (..., slice(max_iter))))
    result = cut(result)
    return result._replace(restarts=cut(result.restarts)) if hasattr(result, "restarts") else result


class ConvergenceWarning(UserWarning):
    """The chosen fit stopped at ``max_iter`` before meeting ``tol``.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> model = emjax.GaussianMixture(2)
        >>> res = emjax.fit(model, X, jax.random.key(0), n_init=4)
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     one = emjax.em(model, res.params, X, max_iter=10, tol=0.0)   # stops at max_iter
        >>> [w.category.__name__ for w in caught]
        ['ConvergenceWarning']
    """


class FitError(RuntimeError):
    """No usable parameters: every restart ended in a failure status.

    Examples:
        >>> import jax, numpy as np, emjax
        >>> X = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)   # 3 rows, 10 copies each
        >>> model = emjax.GaussianMixture(3, pseudo_count=0, reg_covar=0.0)
        >>> try:
        ...     emjax.fit(model, X, jax.random.key(0), n_init=2)
        ... except emjax.FitError as error:
        ...     print(type(error).__name__)
        FitError
    """


class EMResult(NamedTuple):
    """Outcome of one EM run (fields gain a leading axis when batched over restarts).

    Attributes:
        params: best healthy parameters seen (the last accepted iterate).
        objective: mean per-sample (log-likelihood + log prior) of ``params``.
        log_likelihood: mean per-sample log-likelihood of ``params`` (no prior).
        n_iter: iterations performed (plain EM: M-steps whose result was evaluated; with an
            accelerator: its cycles, e.g. SQUAREM's, each worth several EM maps).
        status: a :class:`Status` code.
        history: ``(max_iter,)`` objective after each iteration, NaN past ``n_iter``.
        n_estep: E-step evaluations performed, the starting point's included (the honest
            measure of work: plain EM does ``n_iter + 1``, SQUAREM 3 or 4 per cycle).

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> model = emjax.GaussianMixture(2)
        >>> res = emjax.fit(model, X, jax.random.key(0), n_init=4)
        >>> one = emjax.em(model, res.params, X, max_iter=10, tol=0.0, throw=False)
        >>> one.history.shape, one.params.means.shape          # history: NaN past n_iter
        ((10,), (2, 2))
        >>> res.restarts.n_iter.shape                          # fit's restarts: (n_init,)
        (4,)
    """

    params: Any
    objective: jnp.ndarray
    log_likelihood: jnp.ndarray
    n_iter: jnp.ndarray
    status: jnp.ndarray
    history: jnp.ndarray
    n_estep: jnp.ndarray

    @property
    def converged(self):
        return self.status == Status.CONVERGED

    @property
    def status_name(self):
        """The status by name (``'CONVERGED'``); an array of names for a batch of restarts."""
        return status_names(self.status)

    def __repr__(self) -> str:
        return em_result_repr(self)


class _Carry(NamedTuple):
    i: jnp.ndarray
    status: jnp.ndarray
    params: Any
    stats: Any
    objective: jnp.ndarray
    loglik: jnp.ndarray
    history: jnp.ndarray
    n_estep: jnp.ndarray
    accelerator_state: Any


def failure_status(model, params, objective):
    """NONFINITE / DEGENERATE / RUNNING for ``params`` and their objective."""
    bad = ~all_finite(params)
    status = jnp.where(bad, Status.NONFINITE, Status.RUNNING)
    status = jnp.where(~bad & model.is_degenerate(params), Status.DEGENERATE, status)
    return jnp.where((status == Status.RUNNING) & ~jnp.isfinite(objective), Status.NONFINITE, status)


def move_status(model, params, objective, previous_loglik, previous):
    """RUNNING, or the failure of moving to ``params`` from an iterate whose mean log-likelihood
    and objective were ``previous_loglik`` and ``previous``: NONFINITE, DEGENERATE, or DECREASED
    beyond rounding, relative to the size of the terms summed into ``previous`` (module
    docstring)."""
    status = failure_status(model, params, objective)
    magnitude = jnp.abs(previous_loglik) + jnp.abs(previous - previous_loglik)  # likelihood, the rest
    rounding = DECREASE_EPS_FACTOR * jnp.finfo(previous.dtype).eps * (1 + magnitude)
    return jnp.where((status == Status.RUNNING) & (objective - previous < -rounding),
                     Status.DECREASED, status)


def initial_carry(model, params, stats, loglik, objective, history_length: int,
                  accelerator_state=()) -> _Carry:
    """Loop state before the first M-step, from the evaluation of the starting ``params``;
    room for ``history_length`` (at least ``max_iter``) objectives."""
    status = failure_status(model, params, objective).astype(jnp.int32)
    history = jnp.full((history_length,), jnp.nan, objective.dtype)
    return _Carry(jnp.int32(0), status, params, stats, objective, loglik, history, jnp.int32(1),
                  accelerator_state)


def next_carry(model, c: _Carry, new_params, new_stats, new_ll, new_obj, tol, max_iter,
               n_estep=1, accelerator_state=()) -> _Carry:
    """Loop state after one iteration of ``n_estep`` E-steps, given the evaluation of its
    ``new_params`` (``tol`` and ``max_iter`` may be traced)."""
    change = new_obj - c.objective
    i = c.i + 1
    status = move_status(model, new_params, new_obj, c.loglik, c.objective)
    status = jnp.where((status == Status.RUNNING) & (jnp.abs(change) < tol), Status.CONVERGED, status)
    status = jnp.where((status == Status.RUNNING) & (i >= max_iter), Status.MAX_ITER, status)
    accept = (status == Status.RUNNING) | (status == Status.CONVERGED) | (status == Status.MAX_ITER)
    kept = tree_select(accept, (new_params, new_stats, new_obj, new_ll),
                       (c.params, c.stats, c.objective, c.loglik))
    return _Carry(i, status.astype(jnp.int32), *kept, c.history.at[c.i].set(new_obj),
                  c.n_estep + n_estep, accelerator_state)


def result_of(c: _Carry) -> EMResult:
    return EMResult(c.params, c.objective, c.loglik, c.i, c.status, c.history, c.n_estep)


def run_em(model, params, data, weights, *, max_iter, tol, chunk_size: int,
           rows: RowSharding | None = None, accelerator: str | None = None,
           history_length: int | None = None, monitor=None) -> EMResult:
    """EM on prepared data, in the coordinates of ``model`` (see :mod:`emjax.engine.raw_rows`);
    ``accelerator`` as in :func:`em`.

    ``max_iter`` and ``tol`` may be traced (one compiled loop serves every value); the history
    buffer then needs a static ``history_length >= max_iter`` (default: ``max_iter``, an int).
    ``monitor(i, objective, status)``, if given, is called inside the loop after every
    iteration (traced values; :mod:`emjax.engine.progress` sends them to the host); None adds nothing
    to the program.

    Pure and traceable; :func:`em` and :func:`emjax.fit` are the public entry points. With
    ``rows`` (data sharded over a mesh axis), each device sums its own rows' statistics and
    the totals are all-reduced (:func:`emjax.engine.sharding.row_sum`).
    """
    tol = jnp.asarray(tol, weights.dtype)
    length = int(max_iter) if history_length is None else history_length
    max_iter = jnp.asarray(max_iter, jnp.int32)
    evaluate_at = lambda p: evaluate(model, p, data, weights, chunk_size, rows)
    watched = _watched(monitor)

    if accelerator is None:
        return result_of(_plain_em_loop(model, params, data, weights, evaluate_at, tol, max_iter,
                                        length, watched))
    check = functools.partial(move_status, model)
    m_step = lambda stats, p: em_update(model, stats, p, data, weights)
    state0, update = accelerated_update(accelerator, model, evaluate_at, m_step, check, tol)
    init = initial_carry(model, params, *evaluate_at(params), length, state0)

    def body(c: _Carry) -> _Carry:
        new, n_estep, state = update(c.params, c.stats, c.loglik, c.objective, c.accelerator_state)
        return watched(next_carry(model, c, *new, tol, max_iter, n_estep, state))

    return result_of(jax.lax.while_loop(lambda c: c.status == Status.RUNNING, body, init))


def _watched(monitor):
    """The loop body's last step: the carry unchanged, shown to ``monitor`` if there is one."""
    if monitor is None:
        return lambda c: c

    def watched(c: _Carry) -> _Carry:
        return c._replace(i=monitor(c.i, c.objective, c.status))
    return watched


def _plain_em_loop(model, params, data, weights, evaluate_at, tol, max_iter, length: int,
                   watched) -> _Carry:
    """Plain EM with a single E-step in the program: the loop's first pass evaluates the start
    (``i = -1``: no M-step), every later pass the M-step of the accepted iterate. The same
    iterates as evaluating the start before the loop, with half the E-step code to compile."""
    shapes = jax.eval_shape(evaluate_at, params)
    stats, loglik, objective = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    blank = initial_carry(model, params, stats, loglik, objective, length)
    blank = blank._replace(i=jnp.int32(-1), status=jnp.int32(Status.RUNNING), n_estep=jnp.int32(0))

    def body(c: _Carry) -> _Carry:
        first = c.i < 0
        candidate = tree_select(first, c.params, em_update(model, c.stats, c.params, data, weights))
        evaluation = evaluate_at(candidate)
        return watched(tree_select(first, initial_carry(model, candidate, *evaluation, length),
                                   next_carry(model, c, candidate, *evaluation, tol, max_iter)))

    return jax.lax.while_loop(lambda c: c.status == Status.RUNNING, body, blank)


def to_user_units(model, result: EMResult, transform, log_jacobian) -> EMResult:
    """Maps a result from standardised coordinates back to the user's.

    A healthy restart whose parameters or objective are not representable there (e.g. float32
    covariances of data of magnitude 1e20 overflow) becomes NONFINITE. The parameters of a
    restart that is not healthy carry no derivative (docs/guide/gradients.md: zero, never NaN),
    not even through the data's transform, and neither does an objective that is not finite:
    such values are taken from a mapping of constants, and the differentiable mapping, never
    selected for them, reads ones in their place (so nothing NaN reaches a derivative).
    """
    from_standard = standardizer_of(model).params_from_standard
    constant = from_standard(*jax.lax.stop_gradient((result.params, transform)))
    constant_objective = jax.lax.stop_gradient(result.objective + log_jacobian)
    status = result.status
    unusable = failure_status(model, constant, constant_objective) != Status.RUNNING
    status = jnp.where(healthy(status) & unusable, Status.NONFINITE, status).astype(status.dtype)
    ok = healthy(status)
    safe = tree_select(ok, result.params, jax.tree_util.tree_map(jnp.ones_like, result.params))
    params = tree_select(ok, from_standard(safe, transform), constant)
    finite = jnp.isfinite(constant_objective) & jnp.isfinite(result.log_likelihood + log_jacobian)
    shift = lambda value: jnp.where(finite, jnp.where(finite, value, 1) + log_jacobian,
                                    jax.lax.stop_gradient(value + log_jacobian))
    return result._replace(params=params, objective=shift(result.objective),
                           log_likelihood=shift(result.log_likelihood), status=status,
                           history=result.history + log_jacobian)


def healthy(status):
    """Whether a status code (array) is CONVERGED or MAX_ITER."""
    return (status == Status.CONVERGED) | (status == Status.MAX_ITER)


def em(model, params, data, weights=None, *, max_iter: int = 100, tol: float = 1e-3,
       chunk_size: int | None = None, accelerator: str | None = None, throw: bool = True,
       verbose: bool = False, plan: Plan | None = None) -> EMResult:
    """Runs EM from ``params`` (one restart, e.g. a warm start) until convergence.

    Args:
        model: a model following :mod:`emjax.core.model`'s contract.
        params: starting parameters, in the model's parameter type and the data's units; floating
            leaves are cast to the fit's dtype (the data's float dtype, or the default float for
            integer data).
        data: observations, leading axis = rows (may be sharded over devices: :func:`emjax.shard`).
        weights: optional non-negative per-row weights ``(n,)``; 0 removes a row exactly.
        max_iter: most EM iterations.
        tol: stop when the mean per-sample objective changes by less than this (absolute).
        chunk_size: rows per E-step chunk (memory bound); chosen from the shapes by default.
        accelerator: None (plain EM) or "squarem" (see :mod:`emjax.engine.accelerate`; then ``max_iter``
            bounds SQUAREM cycles and ``n_estep`` counts the E-steps they took).
        throw: raise :class:`FitError` on a failure status and warn on MAX_ITER (host-side only;
            inside ``jit``/``vmap`` inspect ``status`` instead).
        verbose: host-side only: compile time, then iterations and the objective while EM runs
            (as :func:`emjax.fit`'s ``verbose``).
        plan: how to compute (:class:`emjax.Plan`); by default the one :func:`emjax.fit` makes for
            one restart (:func:`emjax.make_plan` with ``n_init=1``). With equal plans, ``em``
            and ``fit(..., n_init=1, init_params=...)`` run the same arithmetic.

    ``max_iter`` and ``tol`` are values of the compiled program: changing them (``max_iter``
    within its bucket, :func:`history_size`) does not compile again.

    Returns:
        :class:`EMResult`.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> model = emjax.GaussianMixture(2)
        >>> res = emjax.fit(model, X, jax.random.key(0), n_init=4)
        >>> again = emjax.em(model, res.params, X, max_iter=10, tol=0.0, throw=False)  # warm start
        >>> emjax.Status(int(again.status)).name, int(again.n_iter)
        ('MAX_ITER', 10)
        >>> bool(again.objective >= res.objective - 1e-5)       # EM never lowers the objective
        True
    """
    check_model(model, "em(model, params, data, weights=None, ...)")
    check_fit_options(max_iter=max_iter, tol=tol, chunk_size=chunk_size)
    check_accelerator(accelerator)
    rows = row_sharding_of(data)
    data, weights = prepare_inputs(model, data, weights, ones_as_none=True)
    params = in_fit_dtype(params, float_dtype(data))
    if not is_traced(params, data):
        model.validate_params(params, data)
    n = local_rows(n_rows(data), rows)
    static_model, hyper = split_hyperparameters(model)
    if plan is None:
        traced = is_traced(params, data, weights, tol, max_iter, hyper)
        plan = choose_plan(model, data, n_init=1, n_rows=n, traced=traced, chunk_size=chunk_size)
    else:
        plan = checked_plan(plan, chunk_size=chunk_size, n_rows=n, where="em")
    args = (static_model, hyper, params, data, weights, tol, max_iter)
    static = dict(history_length=history_size(max_iter), plan=plan, rows=rows, accelerator=accelerator)
    if verbose and not is_traced(*args[1:]):
        progress = FitProgress("emjax.em", max_iter)
        with progress.compiling():
            compiled = _em_jit.lower(*args, **static, monitor=monitor).compile()
        with progress:
            result = jax.block_until_ready(compiled(*args[1:]))
        progress.finished(f"{progress.seconds:.2f} s running; objective {float(result.objective):.6g} "
                          f"({Status(int(result.status)).name}, {int(result.n_iter)} iterations)")
    else:
        result = _em_jit(*args, **static)
    result = trim_history(result, max_iter)
    if throw and not is_traced(result):
        report_status(int(result.status), what="EM")
    return result


def in_fit_dtype(params, dtype):
    """``params`` with floating leaves in ``dtype``, the fit's (the data's float dtype; the
    default float for integer data): the loop's carry keeps one type, so float32 parameters
    with data computed in float64 (e.g. integer codes under x64) are cast, not a trace error."""
    def cast(leaf):
        floating = jnp.issubdtype(jnp.result_type(leaf), jnp.floating)
        return jnp.asarray(leaf, dtype) if floating and jnp.result_type(leaf) != dtype else leaf

    return jax.tree_util.tree_map(cast, params)


@functools.partial(jit_per_plan,
                   static_argnames=("model", "history_length", "plan", "rows", "accelerator", "monitor"))
def _em_jit(model, hyper, params, data, weights, tol, max_iter, *, history_length, plan, rows,
            accelerator, monitor=None):
    model = join_hyperparameters(model, hyper).with_formulation(plan.formulation)
    weights, chunk_size = row_weights(data, weights), plan.chunk_size
    fit_model, data, transform, log_jacobian = fit_coordinates(model, data, weights, chunk_size, rows)
    params = standardizer_of(model).params_to_standard(params, transform)
    shown = None if monitor is None else (
        lambda i, objective, status: monitor(i, objective + log_jacobian, status))
    result = with_implicit_gradients(run_em, fit_model, params, data, weights, max_iter=max_iter,
                                     tol=tol, chunk_size=chunk_size, rows=rows,
                                     accelerator=accelerator, history_length=history_length,
                                     monitor=shown)
    return to_user_units(model, result, transform, log_jacobian)


def report_status(status: int, *, what: str) -> None:
    """Host-side: raise on a failure status, warn on MAX_ITER."""
    status = Status(status)
    if status == Status.MAX_ITER:
        warnings.warn(f"{what} did not converge: {status.message}. Raise max_iter or tol.",
                      ConvergenceWarning, stacklevel=3)
    elif not status.healthy:
        raise FitError(f"{what} failed with status {status.name}: {status.message}.")

