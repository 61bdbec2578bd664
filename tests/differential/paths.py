"""The engine's execution paths, each run for ONE EM step from given parameters (or to
convergence where a path only makes sense so), and the checks every cell makes.

A path returns ``(params after one step, objective reported for them)`` in the user's units.
"""
from __future__ import annotations

import contextlib
import functools
import importlib

import jax
import numpy as np

import emjax
from emjax import driver
from emjax.chunking import n_rows
from emjax.components import gaussian as g
from emjax.row_sums import REASSOCIATING_COMPILER_OPTIONS, one_pass_row_sums, unbatched_restarts
from emjax.validation import prepare_inputs

from .registry import Shape, as_triplets

fit_module = importlib.import_module("emjax.fit")  # the module (emjax.fit is the function)
KEY = jax.random.key(0)

#: Gaussian E-step formulations that can be forced on ``emjax.em`` (see :func:`formulation`).
FORMULATIONS = ("exact", "expanded", "one_pass", "all_components")


def tree64(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def as_dtype(tree, dtype):
    return jax.tree_util.tree_map(
        lambda a: np.asarray(a, dtype) if np.issubdtype(np.asarray(a).dtype, np.floating) else a, tree)


def data_as(data, dtype):
    """Float parts of the data in ``dtype`` (integer data and indices unchanged)."""
    if isinstance(data, emjax.Corpus):
        return emjax.Corpus(data.doc_index, data.word_index, np.asarray(data.count, dtype),
                            data.n_docs, data.n_words)
    return as_dtype(data, dtype)


def fit_dtype(data):
    """The dtype a fit of ``data`` computes in: its first float leaf's, else the default float."""
    floats = [np.asarray(a).dtype for a in jax.tree_util.tree_leaves(data)
              if np.issubdtype(np.asarray(a).dtype, np.floating)]
    return floats[0] if floats else np.dtype(jax.numpy.result_type(float))


def first(tree, r=0):
    return jax.tree_util.tree_map(lambda a: a[r], tree)


def stacked(*trees):
    return jax.tree_util.tree_map(lambda *a: np.stack(a), *trees)


# ------------------------------------------------------------------------ forcing paths
@contextlib.contextmanager
def attribute(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


@contextlib.contextmanager
def formulation(name: str):
    """``emjax.em`` traced afresh with one Gaussian E-step formulation forced:

    * "exact": the exact forms (differences from the means), batched code;
    * "expanded": the guarded expanded forms (:mod:`emjax.components.gaussian_expanded`) as for
      one unbatched restart (:func:`emjax.row_sums.unbatched_restarts`);
    * "one_pass": the one-pass small-d sums (:func:`emjax.row_sums.one_pass_row_sums`) in a
      program compiled with the reassociating options, as ``emjax.fit`` compiles;
    * "all_components": diag/spherical forms over all components at once (the accelerator form)
      instead of one component at a time.

    The switches are read while tracing, so ``em``'s jitted program is replaced by a fresh one.
    """
    assert name in FORMULATIONS
    options = REASSOCIATING_COMPILER_OPTIONS if name == "one_pass" else None
    raw = driver._em_jit.__wrapped__

    @functools.wraps(raw)
    def traced_afresh(*args, **kwargs):  # a new function: jit caches per function object
        return raw(*args, **kwargs)

    fresh = jax.jit(traced_afresh, compiler_options=options,
                    static_argnames=("model", "history_length", "chunk_size", "rows", "accelerator",
                                     "monitor"))
    with contextlib.ExitStack() as stack:
        stack.enter_context(attribute(driver, "_em_jit", fresh))
        stack.enter_context(one_pass_row_sums(name == "one_pass"))
        stack.enter_context(unbatched_restarts(name == "expanded"))
        if name == "all_components":
            stack.enter_context(attribute(g, "per_component_on_this_backend", lambda: False))
        yield


def work_and_rows(model, data, n_init):
    with unbatched_restarts(n_init == 1):
        prepared = prepare_inputs(model, data, None)[0]
        return model.work_per_row(prepared), n_rows(prepared)


@contextlib.contextmanager
def restart_blocks(model, data, n_init: int, per_block: int):
    """``emjax.fit`` runs ``n_init`` restarts in blocks of ``per_block`` (1: one at a time, in a
    ``lax.map`` with the rows in chunks), as tests/test_restart_blocks.py forces them."""
    work, n = work_and_rows(model, data, n_init)
    if per_block == 1:
        budget = 2 * fit_module.MIN_CHUNK * work
        with attribute(fit_module, "RESTART_BLOCK_BUDGET", 0), \
                attribute(fit_module, "default_chunk_budget", lambda: budget):
            assert fit_module.restart_block_size(n_init, n, work) == 1
            yield
    else:
        with attribute(fit_module, "RESTART_BLOCK_BUDGET", per_block * n * work):
            assert fit_module.restart_block_size(n_init, n, work) == per_block
            yield


# ------------------------------------------------------------------------ one step per path
def em_step(model, params, data, weights=None, chunk_size=None, accelerator=None):
    res = emjax.em(model, params, data, weights, max_iter=1, tol=0.0, chunk_size=chunk_size,
                   accelerator=accelerator, throw=False)
    return res.params, float(res.history[0]), int(res.status)


def fit_steps(model, starts, data, weights=None, chunk_size=None):
    """``emjax.fit`` for one iteration from stacked ``starts``: per restart (params, objective)."""
    n_init = jax.tree_util.tree_leaves(starts)[0].shape[0]
    res = emjax.fit(model, data, KEY, n_init=n_init, init_params=starts, weights=weights,
                    max_iter=1, tol=0.0, chunk_size=chunk_size, throw=False)
    r = res.restarts
    return [(first(r.params, i), float(r.history[i, 0]), int(r.status[i])) for i in range(n_init)]


def stream_chunks(model, data, weights, rows_per_chunk):
    """``(rows, weights)`` chunks for ``stream_fit``; PLSA streams triplets (a Corpus of the whole
    corpus's shape per chunk), in the order the engine reads dense counts (``np.nonzero``)."""
    if not isinstance(model, emjax.PLSA):
        return [(data[i:i + rows_per_chunk], weights[i:i + rows_per_chunk])
                for i in range(0, len(data), rows_per_chunk)]
    t = as_triplets(data)
    return [(emjax.Corpus(t.doc[i:i + rows_per_chunk].astype(np.int32), t.word[i:i + rows_per_chunk]
                          .astype(np.int32), t.count[i:i + rows_per_chunk], t.n_docs, t.n_words),
             weights[i:i + rows_per_chunk]) for i in range(0, len(t.count), rows_per_chunk)]


def stream_step(model, params, data, weights, rows_per_chunk):
    chunks = stream_chunks(model, data, weights, rows_per_chunk)
    res = emjax.stream_fit(model, chunks, KEY, init_params=stacked(params), max_iter=1, tol=0.0,
                           throw=False)
    return first(res.restarts.params), float(res.restarts.history[0, 0]), int(res.restarts.status[0])


def online_step(model, params, data, weights):
    """``OnlineEM`` with one full batch: gamma_1 = 1, so one EM step (the objective is not
    monitored there: the reference recomputes nothing)."""
    online = emjax.OnlineEM(model, KEY, init_params=params).partial_fit(data, weights)
    return online.params, None, int(online.status)


# ------------------------------------------------------------------------ checks
def assert_close(got, want, rtol, what, atol=1e-11):
    """Leaf by leaf, ``|got - want| <= rtol * (|want| + max|want|) + atol`` (the second term keeps
    entries near 0 from demanding a relative accuracy the data never had; ``atol`` is float64
    rounding of sums of squares of data of size ~10, e.g. scikit-learn's tied covariance of one
    row, reg_covar = 1e-6, computed as E[x^2] - E[x]^2)."""
    got_leaves, want_leaves = jax.tree_util.tree_leaves(tree64(got)), jax.tree_util.tree_leaves(tree64(want))
    assert len(got_leaves) == len(want_leaves), what
    for i, (a, b) in enumerate(zip(got_leaves, want_leaves)):
        a, b = np.broadcast_to(a, np.shape(b)), np.asarray(b)
        scale = np.max(np.abs(b)) if b.size else 0.0
        err = np.abs(a - b)
        bound = rtol * (np.abs(b) + scale) + atol
        worst = int(np.argmax(err - bound)) if b.size else 0
        assert np.all(err <= bound), (
            f"{what}: leaf {i} differs; worst at flat index {worst}: got {a.flat[worst]!r}, "
            f"want {b.flat[worst]!r} (max |diff| {err.max():.3g}, rtol {rtol:g})")


def check_step(case, model, shape: Shape, start, data, weights, got, rtol, what):
    """One cell: the step's params equal the reference step from ``start`` on the rows repeated by
    ``weights``, and the objective reported for them equals the reference objective recomputed
    at the returned params."""
    params, objective, status = got
    rows = data if weights is None else case.repeat(data, np.asarray(weights, int))
    rows = data_as(rows, np.float64)
    want, _ = case.reference(model, tree64(start), rows)
    assert status in (emjax.Status.MAX_ITER, emjax.Status.CONVERGED, emjax.Status.RUNNING), (
        f"{what}: status {emjax.Status(status).name}")
    assert_close(params, want, rtol, f"{what}: params after one step")
    if objective is not None and case.exact_objective:
        _, recomputed = case.reference(model, tree64(params), rows)
        assert abs(objective - recomputed) <= rtol * (1 + abs(recomputed)), (
            f"{what}: reported objective {objective!r} != objective of the returned params "
            f"{recomputed!r}")


def check_history(history, n_iter, what):
    """The monitored objective never falls by more than the driver's rounding tolerance."""
    h = np.asarray(history, np.float64)[:int(n_iter)]
    eps = np.finfo(np.asarray(history).dtype).eps
    drops = np.diff(h) + driver.DECREASE_EPS_FACTOR * eps * (1 + np.abs(h[:-1]))
    assert np.all(drops >= 0), f"{what}: history falls at iterations {np.flatnonzero(drops < 0)}"
