"""Many EM restarts as one program: ``vmap`` over restart keys, NaN-safe choice of the best."""
from __future__ import annotations

import functools
import time
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .accelerate import check_accelerator
from ..core.chunking import n_rows, row_weights
from .driver import (
    ConvergenceWarning, EMResult, FitError, healthy, history_size, run_em, to_user_units,
    trim_history,
)
from .executable_cache import ExecutableCache
from .implicit import with_implicit_gradients
from .isolated_optimum import warn_if_isolated
from ..core.model import join_hyperparameters, split_hyperparameters
from ..core.plan import Plan, balanced_block, checked_plan, choose_plan
from ..core.standardizer import standardizer_of
from .progress import FitProgress, monitor
from .raw_rows import fit_coordinates
from .result_text import Timing, fit_result_repr, fit_summary, status_names
from .row_buckets import bucket_rows, padded_rows
from .sharding import local_rows, row_sharding_of
from ..core.status import Status, describe
from ..core.tree import is_traced, sliced
from ..core.validation import (
    check_fit_options, check_init_params_type, check_key, check_model, prepare_inputs,
)
from ..core.xla_options import jit_per_plan


class FitResult(NamedTuple):
    """The best restart's outcome, plus every restart's.

    Attributes:
        params: parameters of the best healthy restart.
        objective, log_likelihood, n_iter, status, history, n_estep: as in :class:`EMResult`,
            for it.
        best_index: which restart won (``argmax`` of the objective over healthy restarts).
        restarts: an :class:`EMResult` whose fields have a leading ``(n_init,)`` axis.
        timing: wall time of a host-side call (:class:`emjax.engine.result_text.Timing`), else None.

    ``print(result)`` shows a few lines at any ``n_init`` (arrays by dtype and shape);
    :meth:`summary` a table; ``status_name`` the best restart's status by name.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> model = emjax.GaussianMixture(2)
        >>> res = emjax.fit(model, X, jax.random.key(0), n_init=4)
        >>> res.params.means.shape, res.restarts.objective.shape
        ((2, 2), (4,))
        >>> bool(res.objective == res.restarts.objective[res.best_index]), bool(res.converged)
        (True, True)
    """

    params: Any
    objective: jnp.ndarray
    log_likelihood: jnp.ndarray
    n_iter: jnp.ndarray
    status: jnp.ndarray
    history: jnp.ndarray
    n_estep: jnp.ndarray
    best_index: jnp.ndarray
    restarts: EMResult
    timing: Timing | None = None

    @property
    def converged(self):
        return self.status == Status.CONVERGED

    @property
    def status_name(self):
        """The best restart's status by name (``'CONVERGED'``)."""
        return status_names(self.status)

    def summary(self) -> str:
        """A short table: restarts, the best one's objective and status, every status with its
        count, iterations, wall time (host-side, one fit)."""
        return fit_summary(self)

    def __repr__(self) -> str:
        return fit_result_repr(self)


def restart_keys(key, n_init: int):
    """Key of restart ``r`` is ``fold_in(key, r)``: it does not depend on ``n_init``."""
    return jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(n_init))


def select_best(restarts: EMResult, n_valid=None) -> FitResult:
    """The restart with the highest final objective among healthy ones (NaN-safe; a restart
    whose objective is not finite is never healthy: :func:`emjax.engine.driver.to_user_units`). With
    none healthy it returns restart 0, whose parameters carry no derivative. Only the first
    ``n_valid`` restarts (all by default) are candidates."""
    ok = healthy(restarts.status) & jnp.isfinite(restarts.objective)
    if n_valid is not None:
        ok = ok & (jnp.arange(ok.shape[0]) < n_valid)
    best = jnp.argmax(jnp.where(ok, restarts.objective, -jnp.inf))
    pick = jax.tree_util.tree_map(lambda x: x[best], restarts)
    return FitResult(*pick, best_index=best, restarts=restarts)


def fit(model, data, key, *, n_init: int = 1, weights=None, max_iter: int = 100,
        tol: float = 1e-3, chunk_size: int | None = None, init_params=None,
        accelerator: str | None = None, throw: bool = True, verbose: bool = False,
        plan: Plan | None = None) -> FitResult:
    """Fits ``model`` from ``n_init`` random starts at once and keeps the best healthy one.

    Restart ``r`` starts from ``model.init(fold_in(key, r), data, weights)`` and runs
    :func:`emjax.em`; all restarts are one ``vmap``-ed ``lax.while_loop`` (on a CPU, many
    restarts of a small problem run in blocks of them: :func:`emjax.core.plan.restart_block_size`). The winner
    maximises the final objective over restarts whose status is CONVERGED or MAX_ITER.

    Args:
        model: a model following :mod:`emjax.core.model`'s contract.
        data: observations, leading axis = rows. Rows sharded over a mesh axis
            (:func:`emjax.shard`) stay where they are: each device sums its rows' statistics and
            the sums are all-reduced; the mesh's other axes split the restarts.
        key: a PRNG key (``jax.random.key(0)``; a raw ``jax.random.PRNGKey`` works too) or an
            integer seed, taken as ``jax.random.key(seed)``.
        n_init: number of restarts.
        weights: optional non-negative per-row weights ``(n,)``.
        max_iter, tol, chunk_size, accelerator: as in :func:`emjax.em` (``accelerator="squarem"``
            for SQUAREM-accelerated EM).
        init_params: optional starting parameters with a leading ``(n_init,)`` axis, in place of
            ``model.init`` (``key`` is then unused).
        throw: host-side only: raise :class:`FitError` when every restart failed, warn when the
            winner stopped at ``max_iter``.
        verbose: host-side only: print the compile time, then the iteration, the best objective
            and the restarts still running while the fit runs (a tqdm bar on a terminal or in a
            notebook when tqdm is installed, else a line every few seconds), then a closing line
            (:mod:`emjax.engine.progress`). The same result; the verbose program is compiled apart, with a
            host callback in its loop (JAX's persistent cache does not keep it).
        plan: how to compute (chunk size, restart blocks, E-step formulation, compiler options:
            :class:`emjax.Plan`); by default :func:`make_plan`'s for these arguments. Equal
            plans give :func:`emjax.em` and this function the same arithmetic.

    ``max_iter`` and ``tol`` are values of the compiled program, not part of it: another
    ``max_iter`` (within the same power-of-two bucket, at least 128:
    :func:`emjax.engine.driver.history_size`) or ``tol`` reuses it. Small data are padded with rows of
    weight 0 to one of four sizes per octave where the model's start allows it
    (:mod:`emjax.engine.row_buckets`), so cross-validation folds share a program too; the result is
    the unpadded fit's, up to the order of floating-point sums.

    Returns:
        :class:`FitResult` (``print`` it, or its :meth:`~FitResult.summary`).

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> res = emjax.fit(emjax.GaussianMixture(2), X, jax.random.key(0), n_init=4)
        >>> emjax.Status(int(res.status)).name, res.restarts.status.shape
        ('CONVERGED', (4,))
        >>> sorted(round(float(w), 2) for w in res.params.weights)
        [0.36, 0.64]
    """
    start = time.perf_counter()
    args, static = _prepare(model, data, key, n_init, weights, max_iter, tol, chunk_size, init_params,
                            accelerator, plan)
    if is_traced(*args):  # inside a caller's trace: compiled with the caller's program
        return _trimmed(_fit_jit(*args, **static), max_iter, n_init)
    if verbose:
        result, timing = _verbose_fit(args, static, start, model, max_iter, n_init)
    else:
        result, compiled = _fit_cache(args, static)
        result = jax.block_until_ready(result)
        timing = Timing(time.perf_counter() - start, compiled)
    result = _trimmed(result, max_iter, n_init)._replace(timing=timing)
    if throw:
        raise_if_all_failed(result)
        warn_if_isolated(result, tol)
    return result


def _verbose_fit(args, static, start, model, max_iter, n_init):
    """``_fit_jit`` compiled with :func:`emjax.engine.progress.monitor` in its loop, reported by a
    :class:`~emjax.engine.progress.FitProgress`: ``(result, Timing)``."""
    static = dict(static, monitor=monitor)
    progress = FitProgress(f"emjax.fit {type(model).__name__}", max_iter,
                           -(-static["n_init"] // static["plan"].restart_block))
    with progress.compiling() as ticker:
        compiled = _fit_jit.lower(*args, **static).compile()
    with progress:
        result = jax.block_until_ready(compiled(*args))
    result = _trimmed(result, max_iter, n_init)
    progress.finished(f"{progress.seconds:.2f} s running; best objective "
                      f"{float(result.objective):.6g} ({result.status_name}, {int(result.n_iter)} "
                      f"iterations); restarts: {describe(result.restarts.status)}")
    return result, Timing(time.perf_counter() - start, True, ticker.elapsed)


def timed_fit(model, data, key, *, throw: bool = True, **options):
    """:func:`fit` with compilation and execution timed apart (host-side, concrete inputs).

    Returns ``(result, compile_seconds, run_seconds)``; ``options`` are :func:`fit`'s.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> res, compile_s, run_s = emjax.timed_fit(emjax.GaussianMixture(2), X, jax.random.key(0),
        ...                                         n_init=4)
        >>> compile_s > 0 and run_s > 0
        True
    """
    options = {"n_init": 1, "weights": None, "max_iter": 100, "tol": 1e-3, "chunk_size": None,
               "init_params": None, "accelerator": None, "plan": None, **options}
    args, static = _prepare(model, data, key, **options)
    start = time.perf_counter()
    compiled = _fit_jit.lower(*args, **static).compile()
    compiled_at = time.perf_counter()
    result = _trimmed(jax.block_until_ready(compiled(*args)), options["max_iter"], options["n_init"])
    done = time.perf_counter()
    result = result._replace(timing=Timing(done - start, True, compiled_at - start))
    if throw:
        raise_if_all_failed(result)
        warn_if_isolated(result, options["tol"])
    return result, compiled_at - start, done - compiled_at


def _trimmed(result: FitResult, max_iter: int, n_init: int) -> FitResult:
    """``result`` with every history cut to ``max_iter`` and the restarts to the first
    ``n_init`` (the program runs a bucketed number of them: :func:`_prepare`)."""
    result = trim_history(result, max_iter)
    if result.restarts.status.shape[0] == n_init:
        return result
    return result._replace(restarts=jax.tree_util.tree_map(lambda x: sliced(x, slice(n_init)),
                                                           result.restarts))


def _prepare(model, data, key, n_init, weights, max_iter, tol, chunk_size, init_params,
             accelerator=None, plan=None):
    """Host-side checks and the plan (:func:`emjax.core.plan.choose_plan`, or the caller's ``plan``
    checked): ``(args, static_kwargs)`` for ``_fit_jit``.

    Restarts drawn from ``key`` on concrete, unsharded data run in a bucketed number
    (:func:`emjax.engine.row_buckets.bucket_rows` of ``n_init``: four per octave), so that nearby
    ``n_init`` share a program: restart ``r``'s key does not depend on the count, the extra
    restarts stop after one iteration and are never chosen, and their results are dropped."""
    check_model(model, "fit(model, data, key, ...)")
    check_fit_options(max_iter=max_iter, tol=tol, chunk_size=chunk_size, n_init=n_init)
    check_init_params_type(init_params)
    key = check_key(key, optional=init_params is not None)
    rows = row_sharding_of(data)
    if rows is not None and n_init % rows.n_restart_groups:
        raise ValueError(f"n_init={n_init} must be a multiple of {rows.n_restart_groups}, the number "
                         f"of device groups along the mesh axes {rows.restart_axes} that split restarts.")
    check_accelerator(accelerator)
    data, weights = prepare_inputs(model, data, weights, ones_as_none=True)
    if rows is None and not is_traced(data, weights):  # nearby row counts share one program
        data, weights = padded_rows(model, data, weights)
    if init_params is not None and not is_traced(init_params, data):
        check_init_params(model, init_params, data, n_init)
    static_model, hyper = split_hyperparameters(model)
    traced = is_traced(data, weights, key, tol, init_params, hyper)  # inside a caller's jit/vmap/grad
    n_valid = n_init
    if init_params is None and rows is None and not traced:
        n_init = bucket_rows(n_init)
    args = (data, weights, key, tol, (max_iter, n_valid), init_params, hyper)
    n, groups = local_rows(n_rows(data), rows), rows.n_restart_groups if rows is not None else 1
    if plan is None:
        plan = choose_plan(model, data, n_init=n_init, n_rows=n, traced=traced, groups=groups,
                           chunk_size=chunk_size)
    else:
        plan = checked_plan(plan, chunk_size=chunk_size, n_rows=n, groups=groups, where="fit")
    static = dict(model=static_model, n_init=n_init, history_length=history_size(max_iter),
                  plan=plan, rows=rows, accelerator=accelerator, monitor=None)
    return args, static


def make_plan(model, data, *, n_init: int = 1, weights=None, chunk_size: int | None = None) -> Plan:
    """The :class:`emjax.Plan` that :func:`fit` (and, with ``n_init=1``, :func:`emjax.em`) would
    compute for these arguments: inspect it, change it with ``dataclasses.replace``, and pass it
    back as ``plan=`` to force a path (:mod:`emjax.core.plan`).

    Examples:
        >>> import dataclasses, jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> model = emjax.GaussianMixture(2)
        >>> plan = emjax.make_plan(model, X, n_init=4)
        >>> plan == emjax.make_plan(model, X, n_init=4), plan.init_batch
        (True, 4)
        >>> small = dataclasses.replace(plan, chunk_size=128)     # three chunks of the 272 rows
        >>> res = emjax.fit(model, X, jax.random.key(0), n_init=4, plan=small)
    """
    _, static = _prepare(model, data, jax.random.key(0), n_init, weights, 1, 0.0, chunk_size, None)
    return static["plan"]


def _fit_program(data, weights, key, tol, limits, init_params, hyper, *, model, n_init,
                 history_length, plan, rows, accelerator=None, monitor=None):
    model = join_hyperparameters(model, hyper).with_formulation(plan.formulation)
    weights, chunk_size = row_weights(data, weights), plan.chunk_size
    max_iter, n_valid = limits
    fit_model, data, transform, log_jacobian = fit_coordinates(model, data, weights, chunk_size, rows)
    if init_params is None:
        start = starting_points(fit_model, data, weights, key, n_init, plan.init_batch)
    else:
        start = jax.vmap(lambda p: standardizer_of(model).params_to_standard(p, transform))(init_params)
    shown = None if monitor is None else (
        lambda i, objective, status: monitor(i, objective + log_jacobian, status))
    # restarts past n_valid (a bucket's padding) stop after one iteration
    limit = jnp.where(jnp.arange(n_init) < n_valid, max_iter, 1)
    one = lambda p_limit: to_user_units(model, with_implicit_gradients(
        run_em, fit_model, p_limit[0], data, weights, max_iter=p_limit[1], tol=tol,
        chunk_size=chunk_size, rows=rows, accelerator=accelerator,
        history_length=history_length, monitor=shown), transform, log_jacobian)
    restart_axes = rows.restart_axes if rows is not None and rows.restart_axes else None
    return select_best(run_in_blocks(one, (start, limit), plan.restart_block, restart_axes), n_valid)


_FIT_STATIC = ("model", "n_init", "history_length", "plan", "rows", "accelerator", "monitor")
#: The fit as its own program, compiled with its plan's options (:mod:`emjax.core.plan`: on a CPU,
#: to reassociate float sums, :mod:`emjax.core.row_sums`). Inside a caller's ``jit``/``vmap``/``grad``
#: it is traced into the caller's program, without options (:func:`emjax.core.xla_options.jit`).
_fit_jit = jit_per_plan(_fit_program, static_argnames=_FIT_STATIC)


def _cacheable_fit(static) -> bool:
    """Whether a fit's program may be kept on disk: not with a host callback (``monitor``), not
    sharded (``rows``), not with a plan that compiles leanly (large data: compiling is cheap)."""
    return static["monitor"] is None and static["rows"] is None and not static["plan"].lean_compile


#: ``_fit_jit`` of concrete arguments, its executable kept on disk (:mod:`emjax.engine.executable_cache`).
_fit_cache = ExecutableCache("fit", _fit_jit, _cacheable_fit)


def run_in_blocks(one, start, block: int, spmd_axis_name=None):
    """``one`` of every restart's start point (``start`` has a leading restart axis), ``vmap``-ed
    ``block`` restarts at a time; results with the same leading axis.

    The restarts are padded to a whole number of blocks with copies of the first ones (whose
    results are dropped), so one program of ``block`` restarts is compiled. Blocks of one restart
    (not split over devices) run without a batch axis, in a ``lax.map`` over the restarts: a
    ``vmap`` of one slows HMM scans by ~30%.
    """
    n_init = jax.tree_util.tree_leaves(start)[0].shape[0]
    if block == 1 and spmd_axis_name is None:
        if n_init == 1:
            result = one(jax.tree_util.tree_map(lambda x: x[0], start))
            return jax.tree_util.tree_map(lambda x: x[None], result)
        return jax.lax.map(one, start)
    run = jax.vmap(one, spmd_axis_name=spmd_axis_name)
    if block >= n_init:
        return run(start)
    n_blocks = -(-n_init // block)
    pad = n_blocks * block - n_init
    blocks = jax.tree_util.tree_map(
        lambda x: jnp.concatenate([x, x[:pad]]).reshape((n_blocks, block) + x.shape[1:]), start)
    done = jax.lax.map(run, blocks)
    return jax.tree_util.tree_map(lambda x: x.reshape((n_blocks * block,) + x.shape[2:])[:n_init], done)


def starting_points(model, data, weights, key, n_init, init_batch):
    """``model.init`` for every restart key, ``init_batch`` restarts at a time (memory bound)."""
    init = lambda k: model.init(k, data, weights)
    return run_in_blocks(init, restart_keys(key, n_init), balanced_block(n_init, init_batch))


def init_restarts(model, data, key, *, n_init: int, weights=None):
    """The starting parameters :func:`fit` would use, with a leading ``(n_init,)`` axis, in the
    data's units: inspect or perturb them and pass them back as ``fit(..., init_params=...)``.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> model = emjax.GaussianMixture(2)
        >>> starts = emjax.init_restarts(model, X, jax.random.key(0), n_init=4)
        >>> starts.means.shape                                 # a leading (n_init,) axis
        (4, 2, 2)
        >>> # edit them, then: emjax.fit(model, X, jax.random.key(0), n_init=4, init_params=starts)
    """
    args, static = _prepare(model, data, key, n_init, weights, 1, 0.0, None, None)
    data, weights, key, _, _, _, hyper = args
    return _init_jit(data, weights, key, hyper, model=static["model"], n_init=n_init,
                     plan=static["plan"], rows=static["rows"])


@functools.partial(jit_per_plan, static_argnames=("model", "n_init", "plan", "rows"))
def _init_jit(data, weights, key, hyper, *, model, n_init, plan, rows):
    model = join_hyperparameters(model, hyper).with_formulation(plan.formulation)
    weights = row_weights(data, weights)
    fit_model, data, transform, _ = fit_coordinates(model, data, weights, plan.chunk_size, rows)
    start = starting_points(fit_model, data, weights, key, n_init, plan.init_batch)
    return jax.vmap(lambda p: standardizer_of(model).params_from_standard(p, transform))(start)


def check_init_params(model, init_params, data, n_init):
    leading = {x.shape[0] if x.ndim else None for x in jax.tree_util.tree_leaves(init_params)}
    if leading != {n_init}:
        raise ValueError(f"init_params must have a leading axis of length n_init={n_init} on every "
                         f"array; got leading sizes {sorted(map(str, leading))}.")
    host = jax.tree_util.tree_map(np.asarray, init_params)
    for r in range(n_init):
        try:
            model.validate_params(jax.tree_util.tree_map(lambda x: x[r], host), data)
        except ValueError as err:
            raise ValueError(f"init_params (per restart, after the leading axis), restart {r}: "
                             f"{err}") from None


def raise_if_all_failed(result: FitResult) -> None:
    statuses = np.asarray(result.restarts.status)
    if not np.isin(statuses, [Status.CONVERGED, Status.MAX_ITER]).any():
        reasons = "; ".join(f"{Status(int(s)).name}: {Status(int(s)).message}"
                            for s in np.unique(statuses))
        raise FitError(f"all {statuses.size} restarts failed ({describe(statuses)}). {reasons}. "
                       "Pass throw=False to inspect result.restarts.")
    if int(result.status) == Status.MAX_ITER:
        warnings.warn(f"the best restart did not converge in max_iter iterations "
                      f"({describe(statuses)}). Raise max_iter or tol.",
                      ConvergenceWarning, stacklevel=3)
