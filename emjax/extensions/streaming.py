r"""Exact EM over data streamed from the host one chunk at a time (out-of-core).

Every E-step is a sum over rows, so a pass over the chunks of a dataset that does not fit in
device memory gives exactly the statistics of the in-memory E-step:

.. math::
    S(\theta) = \sum_{c} \sum_{n \in c} w_n \, s(x_n; \theta), \qquad
    \theta \leftarrow \text{M-step}(S(\theta)).

One pass per EM iteration (plus the model's standardisation passes); all restarts share each
pass. The loop over passes and chunks runs on the host, because the data are there; each chunk's
E-step for every restart is one compiled call, dispatched asynchronously while the next chunk is
read. Loop state, statuses and the choice of the best restart are the in-memory driver's
(:func:`emjax.engine.driver.next_carry`, :func:`emjax.engine.restarts.select_best`), so the result equals
:func:`emjax.fit` on the concatenated rows up to the order of floating-point sums.
"""
from __future__ import annotations

import functools
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..core.chunking import choose_chunk_size, chunked_sum, n_rows
from ..engine.driver import initial_carry, next_carry, result_of, to_user_units
from ..engine.em_map import objective_of
from ..engine.restarts import FitResult, check_init_params, raise_if_all_failed, restart_keys, select_best
from ..core.model import check_streamable
from ..core.standardizer import pass_totals, standardizer_of
from ..core.status import Status
from .stream_sources import ChunkReader, chunk_iterable
from ..core.tree import all_finite, tree_select
from ..core.validation import check_fit_options, check_key
from ..core.xla_options import jit

class PassReport(NamedTuple):
    """Progress after one pass over the data (given to ``on_pass``).

    Attributes:
        index: passes done so far, minus one.
        phase: "transform" (standardisation statistics) or "em" (an E-step over every restart).
        iteration: EM iteration whose parameters the pass evaluated (-1 for "transform").
        rows: rows read in the pass.
        seconds: its wall time; rows_per_second: ``rows / seconds``.
        objective: best mean objective among healthy restarts (data units); NaN before EM.
        running: restarts still iterating.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> chunks = [X[:136], X[136:]]                        # row chunks, or a .npy path
        >>> reports = []
        >>> res = emjax.stream_fit(emjax.GaussianMixture(2), chunks, jax.random.key(0), n_init=4,
        ...                        on_pass=reports.append)
        >>> sorted({r.phase for r in reports}), reports[-1].rows
        (['em', 'transform'], 272)
    """

    index: int
    phase: str
    iteration: int
    rows: int
    seconds: float
    rows_per_second: float
    objective: float
    running: int


def print_progress(report: PassReport, stream=None) -> None:
    """An ``on_pass`` callback that prints one line per pass (to stderr by default), every value
    after its label, e.g. ``pass 3  phase em  iteration 2  best objective -1.234567  restarts
    running 4  rows 1.00 M  seconds 0.51  rows/s 1.96 M``.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> chunks = [X[:136], X[136:]]                        # row chunks, or a .npy path
        >>> import functools, sys
        >>> res = emjax.stream_fit(emjax.GaussianMixture(2), chunks, jax.random.key(0), n_init=4,
        ...                        on_pass=functools.partial(emjax.print_progress, stream=sys.stdout))
        pass ... phase ... best objective ... restarts running ... rows ... M  seconds ...
    """
    print(f"pass {report.index:4d}  phase {report.phase:9s}  iteration {report.iteration:4d}  "
          f"best objective {report.objective: .6f}  restarts running {report.running:5d}  "
          f"rows {report.rows / 1e6:8.2f} M  seconds {report.seconds:7.2f}  "
          f"rows/s {report.rows_per_second / 1e6:.2f} M", file=stream or sys.stderr, flush=True)


def stream_fit(model, source, key, *, n_init: int = 1, init_params=None, max_iter: int = 100,
               tol: float = 1e-3, rows_per_chunk: int | None = None, chunk_size: int | None = None,
               on_pass=None, throw: bool = True, verbose: bool = False) -> FitResult:
    """:func:`emjax.fit` over rows read from the host chunk by chunk, one pass per iteration.

    Args:
        model: a model following :mod:`emjax.core.model`'s contract.
        source: the rows, readable once per pass: a NumPy array, a pytree of row arrays such
            as an :class:`emjax.Corpus` (PLSA's rows are its triplets), a path to a ``.npy`` file
            (re-opened and checked at every pass, read with explicit reads, so a file changed
            during the fit raises a :class:`~emjax.extensions.stream_sources.SourceError` naming it; a
            memory map passed as an array is read as it is, and a file shrinking under it kills
            the process with SIGBUS, so pass the path), a
            list of chunks, or a function returning a new iterator of chunks. A chunk is rows
            (an array or a Corpus with the whole corpus's shape) or a pair ``(rows, weights)``.
            Every chunk of every pass is validated (an error names the chunk and the pass, counted
            from 0 as :attr:`PassReport.index`), and every pass must read as many rows, of the
            same total weight, as the first.
        key: PRNG key; restart ``r`` starts from ``model.init(fold_in(key, r), ...)`` on the
            (standardised) FIRST chunk, so shuffle the rows or pass ``init_params``.
        n_init, init_params, max_iter, tol, throw: as in :func:`emjax.fit`.
        rows_per_chunk: rows per host chunk for an array or file source (a positive integer;
            by default about 64 MiB of float32 per chunk).
        chunk_size: rows per device chunk inside a host chunk (memory bound).
        on_pass: called with a :class:`PassReport` after every pass (e.g. :func:`print_progress`).
        verbose: print a line per pass (:func:`print_progress`) when ``on_pass`` is None.

    Returns:
        :class:`emjax.FitResult`.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> chunks = [X[:136], X[136:]]                        # row chunks, or a .npy path
        >>> res = emjax.stream_fit(emjax.GaussianMixture(2), chunks, jax.random.key(0), n_init=4)
        >>> sorted(round(float(w), 2) for w in res.params.weights)
        [0.36, 0.64]
    """
    check_fit_options(max_iter=max_iter, tol=tol, chunk_size=chunk_size, n_init=n_init)
    key = check_key(key, optional=init_params is not None)
    check_streamable(model)
    on_pass = print_progress if verbose and on_pass is None else on_pass
    reader = ChunkReader(model, chunk_iterable(source, rows_per_chunk))
    clock = _PassClock(on_pass)

    def transform_pass(previous):
        total = None
        for x, w in reader.chunks():
            total = _add(total, _transform_chunk(model, x, w, previous))
        clock.done("transform", -1, reader.rows_read, None)
        return total

    standardizer = standardizer_of(model)
    totals = pass_totals(standardizer, transform_pass)
    transform, log_jacobian = standardizer.from_stats(totals) if totals else (None, 0.0)
    if totals and not bool(all_finite((transform, log_jacobian))):
        raise ValueError("the standardising transform of the streamed rows is not finite: a feature "
                         "with no observed (non-NaN) value in any chunk? Drop it before fitting.")

    first_x, first_w = reader.first_chunk()
    if init_params is None:
        start = _init(model, restart_keys(key, n_init), transform, first_x, first_w)
    else:
        check_init_params(model, init_params, first_x, n_init)
        start = jax.vmap(lambda p: standardizer.params_to_standard(p, transform))(init_params)

    rows = n_rows(first_x)
    device_chunk = min(chunk_size or choose_chunk_size(rows, model.work_per_row(first_x), batch=n_init),
                       rows)
    def e_pass(params):
        return _e_pass(model, reader, params, transform, device_chunk)

    stats, loglik, total_weight = e_pass(start)
    carry = _start(model, start, stats, loglik, total_weight, max_iter=max_iter)
    clock.done("em", 0, reader.rows_read, _progress(carry, log_jacobian))
    tol = jnp.asarray(tol, total_weight.dtype)
    while bool(jnp.any(carry.status == Status.RUNNING)):
        new_params = _m_step(model, carry)
        stats, loglik, _ = e_pass(new_params)
        carry = _advance(model, carry, new_params, stats, loglik, total_weight, tol, max_iter=max_iter)
        clock.done("em", int(jnp.max(carry.i)), reader.rows_read, _progress(carry, log_jacobian))
    result = _finish(model, carry, transform, log_jacobian)
    if throw:
        raise_if_all_failed(result)
    return result


class _PassClock:
    def __init__(self, on_pass):
        self.on_pass, self.index, self.start = on_pass, 0, time.perf_counter()

    def done(self, phase, iteration, rows, objective_running):
        now = time.perf_counter()
        seconds, self.start = now - self.start, now
        objective, running = objective_running or (float("nan"), 0)
        if self.on_pass is not None:
            self.on_pass(PassReport(self.index, phase, iteration, rows, seconds,
                                    rows / max(seconds, 1e-12), objective, running))
        self.index += 1


def _progress(carry, log_jacobian):
    healthy = (carry.status <= Status.MAX_ITER) & jnp.isfinite(carry.objective)
    best = jnp.max(jnp.where(healthy, carry.objective, -jnp.inf)) + log_jacobian
    return float(best), int(jnp.sum(carry.status == Status.RUNNING))


def _e_pass(model, reader, params, transform, device_chunk):
    total = None
    for x, w in reader.chunks():
        total = _add(total, _e_chunk(model, params, transform, x, w, device_chunk))
    return total


@jit
def _add(total, new):
    return new if total is None else jax.tree_util.tree_map(jnp.add, total, new)


@functools.partial(jit, static_argnames="model")
def _transform_chunk(model, x, w, previous):
    return standardizer_of(model).stats(x, w, previous)


@functools.partial(jit, static_argnames=("model", "chunk"))
def _e_chunk(model, params, transform, x, w, chunk):
    x = standardizer_of(model).apply(x, transform)
    def one(p):
        return chunked_sum(functools.partial(model.e_step, p), x, w, min(chunk, n_rows(x)))

    stats, loglik = jax.vmap(one)(params)
    return stats, loglik, jnp.sum(w)


@functools.partial(jit, static_argnames="model")
def _init(model, keys, transform, x, w):
    x = standardizer_of(model).apply(x, transform)
    return jax.vmap(lambda k: model.init(k, x, w))(keys)


@functools.partial(jit, static_argnames=("model", "max_iter"))
def _start(model, params, stats, loglik, total_weight, *, max_iter):
    def one(p, s, ll):
        return initial_carry(model, p, s, *objective_of(model, p, ll, total_weight), max_iter)
    return jax.vmap(one)(params, stats, loglik)


@functools.partial(jit, static_argnames="model")
def _m_step(model, carry):
    return jax.vmap(model.m_step)(carry.stats, carry.params)


@functools.partial(jit, static_argnames=("model", "max_iter"))
def _advance(model, carry, new_params, stats, loglik, total_weight, tol, *, max_iter):
    def one(c, p, s, ll):
        moved = next_carry(model, c, p, s, *objective_of(model, p, ll, total_weight), tol, max_iter)
        return tree_select(c.status == Status.RUNNING, moved, c)
    return jax.vmap(one)(carry, new_params, stats, loglik)


@functools.partial(jit, static_argnames="model")
def _finish(model, carry, transform, log_jacobian):
    results = jax.vmap(lambda c: to_user_units(model, result_of(c), transform, log_jacobian))(carry)
    return select_best(results)
