"""The plan (emjax/core/plan.py): one frozen, hashable value holds every choice of how a fit computes.

Checks: ``em`` and ``fit(n_init=1)`` given the same plan run the same arithmetic (the same
parameters, bit for bit, where the program is not compiled to reassociate); plans compare, hash
and print by value and are the compile key; a bad ``plan=`` is refused with a clear error; and no
module but emjax/core/plan.py reads the backend or holds a ContextVar.
"""
import dataclasses
import functools
import importlib
import pathlib

import jax
import numpy as np
import pytest

import emjax

fit_module = importlib.import_module("emjax.engine.restarts")  # the module (emjax.fit is the function)
X = emjax.datasets.load_old_faithful()[:256]  # 256 rows: a bucket size, so fit pads no rows


def first(tree):
    return jax.tree_util.tree_map(lambda a: a[0], tree)


@pytest.mark.slow
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_em_and_fit_with_one_plan_give_identical_parameters(covariance_type):
    model = emjax.GaussianMixture(2, covariance_type=covariance_type)
    start = emjax.init_restarts(model, X, jax.random.key(1), n_init=1)
    default = emjax.make_plan(model, X, n_init=1)
    assert default.restart_block == 1 and default.formulation.unbatched
    for formulation in (emjax.Formulation(unbatched=True), emjax.Formulation(),
                        default.formulation):
        plan = dataclasses.replace(default, formulation=formulation)
        fitted = emjax.fit(model, X, None, n_init=1, init_params=start, plan=plan, max_iter=20,
                           tol=0.0, throw=False)
        run = emjax.em(model, first(start), X, plan=plan, max_iter=20, tol=0.0, throw=False)
        assert int(fitted.n_iter) == int(run.n_iter) == 20
        # a program compiled to reassociate (one_pass) may order a sum differently in the two
        # programs around the same loop: a few float32 ulps; otherwise bit for bit
        same = (np.testing.assert_array_equal if not formulation.one_pass else functools.partial(
            np.testing.assert_allclose, rtol=4 * np.finfo(np.float32).eps, atol=0))
        same(fitted.history, run.history)
        for a, b in zip(fitted.params, run.params):
            same(a, b)


def test_em_by_default_runs_the_plan_fit_makes_for_one_restart():
    model = emjax.GaussianMixture(2, covariance_type="diag")
    start = first(emjax.init_restarts(model, X, jax.random.key(1), n_init=1))
    plan = emjax.make_plan(model, X, n_init=1)
    by_default = emjax.em(model, start, X, throw=False)
    planned = emjax.em(model, start, X, throw=False, plan=plan)
    np.testing.assert_array_equal(by_default.history, planned.history)
    for a, b in zip(by_default.params, planned.params):
        np.testing.assert_array_equal(a, b)


@pytest.mark.usefixtures("no_compiled_programs")
def test_plans_compare_hash_and_print_by_value_and_are_the_compile_key():
    model = emjax.GaussianMixture(2, covariance_type="spherical")
    plan = emjax.make_plan(model, X, n_init=4)
    again = emjax.make_plan(model, X, n_init=4)
    assert plan == again and hash(plan) == hash(again) and {plan: 1}[again] == 1
    smaller = dataclasses.replace(plan, chunk_size=100)
    assert smaller != plan and "chunk_size=100" in repr(smaller)
    assert repr(plan).startswith("Plan(chunk_size=") and "formulation=Formulation(" in repr(plan)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.chunk_size = 1
    emjax.fit(model, X, 0, n_init=4, max_iter=3, plan=plan, throw=False)
    before = fit_module._fit_jit._cache_size()
    emjax.fit(model, X, 0, n_init=4, max_iter=3, plan=again, throw=False)
    assert fit_module._fit_jit._cache_size() == before  # an equal plan: the same program
    emjax.fit(model, X, 0, n_init=4, max_iter=3, plan=smaller, throw=False)
    assert fit_module._fit_jit._cache_size() == before + 1


def test_bad_plans_are_refused_before_tracing():
    model = emjax.GaussianMixture(2)
    plan = emjax.make_plan(model, X)
    start = first(emjax.init_restarts(model, X, jax.random.key(1), n_init=1))
    with pytest.raises(TypeError, match="em: plan must be an emjax.Plan"):
        emjax.em(model, start, X, plan={"chunk_size": 64})
    with pytest.raises(TypeError, match="fit: plan must be an emjax.Plan"):
        emjax.fit(model, X, 0, plan="fast")
    with pytest.raises(ValueError, match="pass chunk_size or plan, not both"):
        emjax.fit(model, X, 0, chunk_size=64, plan=plan)
    with pytest.raises(ValueError, match="Plan.restart_block must be a positive integer; got 0"):
        dataclasses.replace(plan, restart_block=0)
    with pytest.raises(TypeError, match="Formulation.one_pass must be True or False; got 1"):
        emjax.Formulation(one_pass=1)
    with pytest.raises(TypeError, match="Plan.formulation must be an emjax.Formulation"):
        dataclasses.replace(plan, formulation="exact")


def test_only_the_plan_module_reads_the_backend_or_holds_a_context_variable():
    package = pathlib.Path(emjax.__file__).parent
    offenders = [str(path.relative_to(package)) for path in package.rglob("*.py")
                 if path.name != "plan.py" and any(word in path.read_text() for word in
                                                   ("default_backend(", "ContextVar", "contextvars"))]
    assert offenders == []
