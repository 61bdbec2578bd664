"""Fits to convergence on every model configuration: every restart reports the objective of the
parameters it returns (recomputed by the float64 reference), its history never falls beyond
rounding and ends at that objective, the best restart is the best healthy one; SQUAREM reaches
the plain EM optimum. (A float32 fit following the float64 one is checked beside the float32
step in test_one_step.py, sharing its compiled programs.)
"""
from __future__ import annotations

import numpy as np
import pytest

import emjax

from . import paths as P
from .grid import SMALL, integer_weights, path_cells
from .test_one_step import setup

pytestmark = pytest.mark.usefixtures("x64")
HEALTHY = (emjax.Status.CONVERGED, emjax.Status.MAX_ITER)


def check_restarts(case, model, data, weights, res, what, rtol=1e-9):
    """The invariants of every restart of a :class:`emjax.FitResult`."""
    r = res.restarts
    rows = P.data_as(data if weights is None else case.repeat(data, np.asarray(weights, int)), np.float64)
    statuses = [emjax.Status(int(s)) for s in np.asarray(r.status)]
    assert all(s in HEALTHY for s in statuses), f"{what}: statuses {[s.name for s in statuses]}"
    for i, n_iter in enumerate(np.asarray(r.n_iter)):
        history, objective = np.asarray(r.history[i]), float(r.objective[i])
        P.check_history(history, n_iter, f"{what} restart {i}")
        assert abs(history[n_iter - 1] - objective) <= 1e-12 * (1 + abs(objective)), (
            f"{what} restart {i}: history ends at {history[n_iter - 1]!r}, objective {objective!r}")
        if case.exact_objective:
            _, recomputed = case.reference(model, P.tree64(P.first(r.params, i)), rows)
            assert abs(objective - recomputed) <= rtol * (1 + abs(recomputed)), (
                f"{what} restart {i}: reported objective {objective!r}, objective of the returned "
                f"params {recomputed!r}")
    best = int(np.argmax(np.asarray(r.objective)))
    assert float(res.objective) == float(r.objective[best]), f"{what}: best restart not picked"


@pytest.mark.parametrize("case", path_cells("fit_many"))
def test_fit_restarts_report_the_objective_of_their_params(case):
    model, data, _ = setup(case, SMALL)
    w = integer_weights(case.n_rows(data), SMALL.seed)
    res = emjax.fit(model, data, P.KEY, n_init=4, weights=w, max_iter=40, tol=1e-9, throw=False)
    check_restarts(case, model, data, w, res, f"{case.name} fit n_init=4")


@pytest.mark.parametrize("case", path_cells("squarem"))
def test_squarem_reaches_the_plain_em_optimum(case):
    model, data, start = setup(case, SMALL)
    init = P.stacked(start)
    options = dict(n_init=1, init_params=init, max_iter=3000, tol=1e-11, throw=False)
    plain = emjax.fit(model, data, P.KEY, **options)
    fast = emjax.fit(model, data, P.KEY, accelerator="squarem", **options)
    check_restarts(case, model, data, None, plain, f"{case.name} plain")
    check_restarts(case, model, data, None, fast, f"{case.name} squarem")
    f, g = float(plain.objective), float(fast.objective)
    if abs(g - f) > 1e-6 * (1 + abs(f)):  # another optimum: allowed if higher and a fixed point
        assert g > f, f"{case.name}: SQUAREM objective {g!r} below plain EM {f!r}"
        assert_fixed_point(model, data, fast.params, g, f"{case.name} SQUAREM's optimum")
    assert int(fast.n_estep) <= int(plain.n_estep) or int(plain.n_iter) < 20


def assert_fixed_point(model, data, params, objective, what, n_iter=100):
    """Plain EM from ``params`` stays there: over ``n_iter`` steps it stays healthy and the
    objective moves by less than 1e-9 relative (the parameters may still creep along a flat
    direction: Bernoulli and multinomial mixtures move by ~1e-5 relative while the objective
    holds). A Dirichlet-process BGMM at n=57, d=3: SQUAREM empties a component and reaches ELBO
    -5.8445 where plain EM stops at -5.9574; both hold under this test."""
    again = emjax.em(model, params, data, max_iter=n_iter, tol=0.0, throw=False)
    assert emjax.Status(int(again.status)) in HEALTHY, f"{what}: EM from it ends {again.status}"
    assert abs(float(again.objective) - objective) <= 1e-9 * (1 + abs(objective)), (
        f"{what}: EM from it moves the objective from {objective!r} to {float(again.objective)!r}")
