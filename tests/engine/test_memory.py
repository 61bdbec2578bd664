"""Memory of a fit beyond its data (issue W6): host-side finiteness checks without a compiled
program or a data-sized temporary, unweighted fits without an (n,) weights argument, and the lean
XLA compilation chosen for large data.

References: NumPy (``np.isfinite`` / ``np.argwhere`` on the whole array), XLA's own buffer
assignment (``compiled.memory_analysis()``), and scikit-learn's GaussianMixture at float64 for the
leanly compiled program's results.
"""
import dataclasses
import importlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import emjax
from emjax.core import plan as plan_module
from emjax.core import validation, xla_options
from emjax.core.plan import CPU_CHUNK_BUDGET, choose_chunk_size

fit_module = importlib.import_module("emjax.engine.restarts")
driver_module = importlib.import_module("emjax.engine.driver")


@pytest.mark.parametrize("as_jax", [False, True])
@pytest.mark.parametrize("where", [(0, 0), (37, 2), (1_999, 4)])
def test_blocked_finiteness_check_names_the_first_bad_value_and_compiles_nothing(
        monkeypatch, as_jax, where):
    """Blocks of 3 rows (15 elements): the first offending index, the count and the kind are
    NumPy's on the whole array, wherever the value sits (first row, mid-block, last row)."""
    monkeypatch.setattr(validation, "FINITE_CHECK_BLOCK", 15)
    x = np.random.default_rng(0).normal(size=(2_000, 5)).astype(np.float32)
    validation.check_finite(jnp.asarray(x) if as_jax else x, "data")  # finite: no error
    x[where] = np.nan
    x[1_999, 0] = np.inf
    compiled_before = validation._all_finite._cache_size()
    with pytest.raises(ValueError) as err:
        validation.check_finite(jnp.asarray(x) if as_jax else x, "data", nan_hint=" hint")
    first = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
    count = int((~np.isfinite(x)).sum())
    assert f"{count} NaN or inf value(s); the first at index {first}. hint" in str(err.value)
    assert validation._all_finite._cache_size() == compiled_before  # host memory: no program


def test_finiteness_check_of_vectors_and_scalars():
    validation.check_finite(np.arange(5.0), "weights")
    with pytest.raises(ValueError, match=r"weights contains 1 inf value\(s\); the first at index 3"):
        validation.check_finite(np.array([0.0, 1.0, 2.0, np.inf]), "weights")
    with pytest.raises(ValueError, match="tol contains 1 NaN"):
        validation.check_finite(np.float64(np.nan), "tol")


def test_unweighted_inputs_carry_no_weights_vector():
    model = emjax.GaussianMixture(3)
    x = np.random.default_rng(1).normal(size=(50, 2))
    data, weights = validation.prepare_inputs(model, x, None, ones_as_none=True)
    assert weights is None and data.shape == (50, 2)
    with pytest.raises(ValueError, match="n_samples=2 .* must be >= n_components=3"):
        validation.prepare_inputs(model, x[:2], None, ones_as_none=True)  # still checked


@pytest.mark.slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA's CPU buffer assignment")
def test_unweighted_large_fit_takes_the_data_alone_as_argument_and_compiles_lean():
    """A 2^21 x 8 float32 fit (64 MiB: the lean compilation), compiled only: its arguments are the
    data plus a few scalars (no (n,) weights), and its temporaries stay far below the data."""
    n, d = 1 << 21, 8
    data_bytes = n * d * 4
    model = emjax.GaussianMixture(4, covariance_type="diag")
    small = np.random.default_rng(0).normal(size=(64, d)).astype(np.float32)
    args, static = fit_module._prepare(model, small, jax.random.key(0), 1, None, 2, 0.0, None, None)
    _, _, key, tol, max_iter, init_params, hyper = args  # (64 rows are padded: weights given)
    rows = jax.ShapeDtypeStruct((n, d), jnp.float32)
    assert plan_module.lean_compile(rows) and not plan_module.lean_compile(small)
    static["plan"] = dataclasses.replace(
        static["plan"], chunk_size=choose_chunk_size(n, model.work_per_row(small), budget=CPU_CHUNK_BUDGET),
        lean_compile=True)
    lean_before = fit_module._fit_jit._cache_size()
    compiled = fit_module._fit_jit.lower(rows, None, key, tol, max_iter, init_params, hyper,
                                            **static).compile()
    memory = compiled.memory_analysis()
    assert memory.argument_size_in_bytes < data_bytes + 1024
    assert memory.temp_size_in_bytes < 0.5 * data_bytes, memory.temp_size_in_bytes / data_bytes
    assert fit_module._fit_jit._cache_size() == lean_before  # lower() adds no call entry


def test_lean_compile_only_for_concrete_data_on_cpu_past_the_threshold():
    big = jax.ShapeDtypeStruct((plan_module.LEAN_COMPILE_MIN_BYTES // 4, 1), jnp.float32)
    smaller = jax.ShapeDtypeStruct((plan_module.LEAN_COMPILE_MIN_BYTES // 4 - 1, 1), jnp.float32)
    assert plan_module.lean_compile(big) == (jax.default_backend() == "cpu")
    assert not plan_module.lean_compile(smaller)
    assert not plan_module.lean_compile(None)
    assert jax.jit(lambda x: jnp.asarray(plan_module.lean_compile(x)))(jnp.zeros(3)) == 0  # traced


@pytest.mark.usefixtures("no_compiled_programs")
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="lean compilation is for CPU memory")
@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_leanly_compiled_em_matches_sklearn_trace(x64, cov_type):
    """EM compiled lean (a plan with ``lean_compile``): scikit-learn's parameters and
    per-iteration mean log-likelihood from the same start, to 1e-8 (float64, unweighted: ones
    made in the program)."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=(60, 3)) * 0.7 + 2, rng.normal(size=(60, 3)) - 1]) + 5.0
    w0, m0 = np.array([0.3, 0.3, 0.4]), x[[0, 70, 100]] + 0.2
    cov0 = np.stack([np.eye(3) * s for s in (1.0, 1.5, 0.8)])
    cov0 = cov0 if cov_type == "full" else np.diagonal(cov0, axis1=1, axis2=2).copy()
    n_iter = 12
    lean_before = driver_module._em_jit._cache_size()
    model = emjax.GaussianMixture(3, cov_type, pseudo_count=0)
    plan = dataclasses.replace(emjax.make_plan(model, x), lean_compile=True)
    assert plan.compiler_options.items() >= plan_module.LEAN_CPU_COMPILE.items()
    r = emjax.em(model, emjax.GMMParams(*map(jnp.asarray, (w0, m0, cov0))), x, max_iter=n_iter,
                 tol=0.0, throw=False, plan=plan)
    assert driver_module._em_jit._cache_size() == lean_before + 1
    trace = []
    for t in range(2, n_iter + 2):  # lower_bound_ after t steps = the objective after t - 1
        sk = SkGaussianMixture(3, covariance_type=cov_type, max_iter=t, tol=0.0, weights_init=w0,
                               means_init=m0, precisions_init=1 / cov0 if cov_type == "diag"
                               else np.linalg.inv(cov0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkConvergenceWarning)
            trace.append(sk.fit(x).lower_bound_)
    np.testing.assert_allclose(np.asarray(r.history), trace, rtol=1e-8)
    sk = SkGaussianMixture(3, covariance_type=cov_type, max_iter=n_iter, tol=0.0, weights_init=w0,
                           means_init=m0, precisions_init=1 / cov0 if cov_type == "diag"
                           else np.linalg.inv(cov0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk.fit(x)
    np.testing.assert_allclose(r.params.means, sk.means_, rtol=1e-8)
    np.testing.assert_allclose(r.params.covariances, sk.covariances_, rtol=1e-8)


def test_heap_is_trimmed_after_each_compilation_inside_the_block_only(monkeypatch):
    calls = []
    xla_options._malloc_trim.cache_clear()
    monkeypatch.setattr(xla_options.ctypes, "CDLL", lambda name: type("C", (), {
        "malloc_trim": staticmethod(lambda pad: calls.append(pad))}))
    x = jnp.arange(7.0)
    try:
        with xla_options.heap_trimmed_after_compiling():
            jax.jit(lambda x: x * 3 + 1)(x).block_until_ready()  # a new program: compiled
        assert calls == [0]
        jax.jit(lambda x: x * 5 - 1)(x).block_until_ready()  # compiled outside: untouched
        assert calls == [0]
    finally:
        xla_options._malloc_trim.cache_clear()
