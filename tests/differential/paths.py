"""The engine's execution paths, each run for ONE EM step from given parameters (or to
convergence where a path only makes sense so), and the checks every cell makes.

A path returns ``(params after one step, objective reported for them)`` in the user's units.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

import emjax
from emjax.engine import driver
from emjax.core.chunking import n_rows
from emjax.core.plan import MIN_CHUNK, choose_chunk_size
from emjax.engine.row_buckets import padded_rows
from emjax.core.validation import prepare_inputs

from .registry import Shape, as_triplets

KEY = jax.random.key(0)


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
#: Gaussian E-step formulations forced on ``emjax.em`` through its plan (:func:`em_step`):
#: "exact": the exact forms (differences from the means), batched code; "expanded": the guarded
#: expanded forms (:mod:`emjax.components.gaussian_expanded`) as for one unbatched restart;
#: "one_pass": the one-pass small-d sums in a program compiled with the reassociating options,
#: as ``emjax.fit`` compiles; "all_components": diag/spherical forms over all components at once
#: (the accelerator form) instead of one component at a time.
FORMULATIONS = {"exact": emjax.Formulation(), "expanded": emjax.Formulation(unbatched=True),
                "one_pass": emjax.Formulation(one_pass=True),
                "all_components": emjax.Formulation(per_component=False)}


def blocks_plan(model, data, weights, n_init: int, per_block: int):
    """The plan of ``emjax.fit`` with ``n_init`` restarts in blocks of ``per_block`` (1: one at a
    time, in a ``lax.map``, with the rows in chunks of at most 2 x MIN_CHUNK), as
    tests/engine/test_restart_blocks.py forces them."""
    plan = emjax.make_plan(model, data, n_init=n_init, weights=weights)
    prepared = padded_rows(model, *prepare_inputs(model, data, weights, ones_as_none=True))[0]  # as fit's
    n, work = n_rows(prepared), model.with_formulation(plan.formulation).work_per_row(prepared)
    chunk = choose_chunk_size(n, work, budget=2 * MIN_CHUNK * work) if per_block == 1 else n
    return dataclasses.replace(plan, restart_block=per_block, chunk_size=chunk)


# ------------------------------------------------------------------------ one step per path
def em_step(model, params, data, weights=None, chunk_size=None, accelerator=None, formulation=None):
    """One ``emjax.em`` step; ``formulation`` (a key of :data:`FORMULATIONS`) forces that
    Gaussian E-step through the plan."""
    plan = None
    if formulation is not None:
        plan = dataclasses.replace(emjax.make_plan(model, data, weights=weights, chunk_size=chunk_size),
                                   formulation=FORMULATIONS[formulation])
        chunk_size = None
    res = emjax.em(model, params, data, weights, max_iter=1, tol=0.0, chunk_size=chunk_size,
                   accelerator=accelerator, throw=False, plan=plan)
    return res.params, float(res.history[0]), int(res.status)


def fit_steps(model, starts, data, weights=None, chunk_size=None, per_block=None):
    """``emjax.fit`` for one iteration from stacked ``starts`` (in restart blocks of
    ``per_block``: :func:`blocks_plan`): per restart (params, objective)."""
    n_init = jax.tree_util.tree_leaves(starts)[0].shape[0]
    plan = None if per_block is None else blocks_plan(model, data, weights, n_init, per_block)
    res = emjax.fit(model, data, KEY, n_init=n_init, init_params=starts, weights=weights,
                    max_iter=1, tol=0.0, chunk_size=chunk_size, throw=False, plan=plan)
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
