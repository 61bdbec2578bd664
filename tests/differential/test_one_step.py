"""One EM step from given parameters, on every model configuration, against the independent
float64 reference of :mod:`.references`: over chunk sizes 1, a prime, n - 1, n and more than n,
with integer weights (weight w = the row repeated w times, 0 = removed), through ``em``, ``fit``
with one and with several restarts, restart blocks, each Gaussian E-step formulation,
``stream_fit``, ``OnlineEM`` with one full batch, and in float32. In every cell the reported
objective must equal the reference objective recomputed at the returned parameters.
"""
from __future__ import annotations

import numpy as np
import pytest

import emjax

from . import paths as P
from .grid import (FAST, SMALL, WIDE, cases, chunk_grid, chunk_size, integer_weights, path_cells,
                   verify)
from .registry import BY_NAME

pytestmark = pytest.mark.usefixtures("x64")
RTOL = 1e-9


def setup(case, shape, dtype=np.float64):
    model = case.make_model(shape)
    data = case.make_data(shape)
    start = case.make_start(model, data, np.random.default_rng(shape.seed))
    return model, P.data_as(data, dtype), P.as_dtype(start, dtype)


def starts(case, model, data, shape, n):
    return [case.make_start(model, data, np.random.default_rng(shape.seed + 10 * r)) for r in range(n)]


# ------------------------------------------------------------------------ em, chunks and weights
@pytest.mark.parametrize("case", cases(FAST, fast=True) + cases(sorted(set(BY_NAME) - set(FAST))))
def test_em_step_with_weights_in_prime_chunks(case):
    model, data, start = setup(case, SMALL)
    rows = case.n_rows(data)
    w = integer_weights(rows, SMALL.seed)
    got = P.em_step(model, start, data, w, chunk_size("prime", rows))
    P.check_step(case, model, SMALL, start, data, w, got, RTOL, f"{case.name} em prime chunks, weights")


#: Cells of the chunk grid that fail today (strict xfails, to flip once fixed). The tied cells at
#: n=569, d=30 in one chunk (XLA CPU's YNNPACK fusion, see docs/guide/numerics.md "Two XLA CPU defects") pass now.
KNOWN_CELLS: dict = {}


def _chunk_cells():
    cells = []
    for case in cases():
        for shape, kind in chunk_grid(case.values[0].family):
            cell = f"n{shape.n}d{shape.d}k{shape.k}-{kind}"
            marks = [verify]
            if (case.id, cell) in KNOWN_CELLS:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_CELLS[case.id, cell]))
            cells.append(pytest.param(case.values[0], shape, kind, marks=marks, id=f"{case.id}-{cell}"))
    return cells


@pytest.mark.parametrize("case, shape, kind", _chunk_cells())
def test_em_step_over_chunk_sizes(case, shape, kind):
    model, data, start = setup(case, shape)
    rows = case.n_rows(data)
    got = P.em_step(model, start, data, None, chunk_size(kind, rows))
    P.check_step(case, model, shape, start, data, None, got, RTOL, f"{case.name} em chunk {kind}")


@verify
@pytest.mark.parametrize("case", cases())
def test_em_step_with_weights_one_chunk(case):
    model, data, start = setup(case, WIDE)
    w = integer_weights(case.n_rows(data), WIDE.seed)
    got = P.em_step(model, start, data, w)
    P.check_step(case, model, WIDE, start, data, w, got, RTOL, f"{case.name} em weights")


# ------------------------------------------------------------------------ fit and restart blocks
def _fit_one_cells():
    """Every configuration at d = 6; the Gaussian ones also at d = 3, where their E-step takes
    another form (the other families' arithmetic does not depend on d)."""
    cells = []
    for param in path_cells("fit1"):
        (case,) = param.values
        for shape, name in ((WIDE, "d6"), (SMALL, "d3")):
            if shape is SMALL and case.family not in ("gmm", "bgmm"):
                continue
            marks = param.marks if shape is WIDE else (*param.marks, verify)
            cells.append(pytest.param(case, shape, marks=marks, id=f"{case.name}-{name}"))
    return cells


@pytest.mark.parametrize("case, shape", _fit_one_cells())
def test_fit_one_restart_step(case, shape):
    """``fit(n_init=1)``: one unbatched restart in the fit's own program (at d = 6 the expanded
    Gaussian E-step applies to every covariance type, at d = 3 the one-pass sums to full/tied)."""
    model, data, start = setup(case, shape)
    w = integer_weights(case.n_rows(data), shape.seed)
    (got,) = P.fit_steps(model, P.stacked(start), data, w)
    P.check_step(case, model, shape, start, data, w, got, RTOL, f"{case.name} fit n_init=1 {shape}")


@pytest.mark.parametrize("per_block", [pytest.param(None, marks=verify), 2, 1],
                         ids=["together", "blocks_of_2", "one_at_a_time"])
@pytest.mark.parametrize("case", path_cells("blocks"))
def test_fit_many_restarts_step(case, per_block):
    """``fit(n_init=3)`` from three starts: all at once (batched), in restart blocks of 2 (the last
    padded), and one at a time with rows in chunks; each restart equals its reference step."""
    model, data, _ = setup(case, SMALL)
    inits = starts(case, model, data, SMALL, 3)
    w = integer_weights(case.n_rows(data), SMALL.seed)
    got = P.fit_steps(model, P.stacked(*inits), data, w, per_block=per_block)
    for r, (start, one) in enumerate(zip(inits, got)):
        P.check_step(case, model, SMALL, start, data, w, one, RTOL, f"{case.name} restart {r}")


# ------------------------------------------------------------------------ Gaussian formulations
def _formulation_cells():
    """(case, formulation, shape) where the formulation applies: expanded for complete data
    (full/tied above 4 features), one-pass sums for full/tied up to 4 features, all components at
    once for diag/spherical; the exact form everywhere (also for the Bayesian mixture). The exact
    form at d = 3 is ``em``'s own program with no switch set, which
    test_em_step_with_weights_in_prime_chunks runs on the same inputs: it is forced at d = 6."""
    fast = {("gmm-tied-sklearn-error", "exact"), ("gmm-full-prior-error", "expanded"),
            ("gmm-tied-prior-error", "one_pass"), ("gmm-diag-sklearn-error", "all_components")}
    cells = []
    for name, case in BY_NAME.items():
        if case.family not in ("gmm", "bgmm"):
            continue
        cov = name.split("-")[1]
        complete = name.endswith("-error")
        for formulation, shape in (("exact", WIDE), ("expanded", WIDE),
                                   ("expanded", SMALL), ("one_pass", SMALL), ("all_components", SMALL)):
            applies = {"exact": True,
                       "expanded": complete and case.family == "gmm" and (
                           cov in ("diag", "spherical") or shape.d > 4),
                       "one_pass": cov in ("full", "tied"),
                       "all_components": cov in ("diag", "spherical")}[formulation]
            if not applies or (formulation == "expanded" and shape is SMALL and cov in ("full", "tied")):
                continue
            is_fast = (name, formulation) in fast and shape is (
                WIDE if formulation in ("exact", "expanded") else SMALL)
            cells.append(pytest.param(case, formulation, shape, marks=() if is_fast else (verify,),
                                      id=f"{name}-{formulation}-d{shape.d}"))
    return cells


@pytest.mark.parametrize("case, formulation, shape", _formulation_cells())
def test_gaussian_formulation_step(case, formulation, shape):
    """Each E-step formulation forced on ``em`` through its plan (:data:`.paths.FORMULATIONS`),
    with weights, in chunks of a prime size."""
    model, data, start = setup(case, shape)
    w = integer_weights(case.n_rows(data), shape.seed)
    got = P.em_step(model, start, data, w, chunk_size("prime", case.n_rows(data)), formulation=formulation)
    P.check_step(case, model, shape, start, data, w, got, RTOL, f"{case.name} {formulation} {shape}")


# ------------------------------------------------------------------------ stream, online, float32
@pytest.mark.parametrize("case", path_cells("stream"))
def test_stream_fit_step(case):
    model, data, start = setup(case, SMALL)
    w = integer_weights(case.n_rows(data), SMALL.seed)
    got = P.stream_step(model, start, data, w, rows_per_chunk=chunk_size("prime", case.n_rows(data)))
    P.check_step(case, model, SMALL, start, data, w, got, RTOL, f"{case.name} stream_fit")


@pytest.mark.parametrize("case", path_cells("online"))
def test_online_em_one_full_batch_is_one_step(case):
    model, data, start = setup(case, SMALL)
    w = integer_weights(case.n_rows(data), SMALL.seed)
    got = P.online_step(model, start, data, w)
    P.check_step(case, model, SMALL, start, data, w, got, RTOL, f"{case.name} OnlineEM")


@pytest.mark.parametrize("case", path_cells("float32"))
def test_float32_step_and_fit_follow_float64(case):
    """float32 data and params: one step within float32 accuracy of the float64 reference, and
    five EM steps whose objectives follow the same five steps in float64 to float32 accuracy
    (parameters may drift apart where the likelihood is flat). Both runs share the weights and
    prime chunks of the one step, so they reuse its compiled programs (``max_iter`` is traced).
    Data of integer codes (categorical, Bayesian network) have no float dtype of their own: the
    fit runs in the default float (float64 here) and ``em`` casts the float32 params to it.
    Full/tied fits under the default prior carry a slightly stronger prior in float32
    (docs/guide/numerics.md "Regularisation": the standardised units shrink so the prior stays
    above float32 rounding of the scatter), which moves their objective by ~1e-4 relative; they
    are held to that."""
    model, data, start = setup(case, SMALL, np.float32)
    _, data64, start64 = setup(case, SMALL)
    w64 = integer_weights(case.n_rows(data), SMALL.seed)
    w = w64.astype(np.float32)
    chunk = chunk_size("prime", case.n_rows(data))
    got = P.em_step(model, start, data, w, chunk)
    assert all(np.asarray(leaf).dtype == P.fit_dtype(data) for leaf in P.jax.tree_util.tree_leaves(got[0])
               if np.issubdtype(np.asarray(leaf).dtype, np.floating))
    P.check_step(case, model, SMALL, start, data, w, got, 2e-4, f"{case.name} float32")
    options = dict(max_iter=5, tol=0.0, chunk_size=chunk, throw=False)
    res32 = emjax.em(model, start, data, w, **options)
    res64 = emjax.em(model, start64, data64, w64, **options)
    assert np.asarray(res32.history).dtype == P.fit_dtype(data)
    h64, h32 = np.asarray(res64.history), np.asarray(res32.history, np.float64)
    stronger_prior = case.family == "gmm" and ("-full-prior" in case.name or "-tied-prior" in case.name)
    rtol = 2e-4 if stronger_prior else 1e-5
    np.testing.assert_allclose(h32, h64, rtol=rtol, atol=1e-5, err_msg=f"{case.name} float32 history")
