"""Restarts run in blocks (``emjax.engine.restarts.run_in_blocks``) and the one-pass small-D statistics that
``fit`` traces: the same restarts, statuses and parameters as all restarts at once, and the same
statistics and log-densities as NumPy float64 references written from the definitions. Paths are
forced by passing an :class:`emjax.Plan` (``plan=``), never by patching the engine."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import blobs
from reference.gaussian_stats import problem, reference_stats

import emjax
from emjax.components import gaussian as g
from emjax.core.plan import MIN_CHUNK, choose_chunk_size, restart_block_size
from emjax.core.row_sums import REASSOCIATING_COMPILER_OPTIONS

KEY = jax.random.key(3)
MODEL = emjax.GaussianMixture(3, init_params="random_from_data")
N_INIT, N, D = 7, 200, 2
ONE_PASS = emjax.Formulation(one_pass=True)


#: Restart blocks are a CPU feature (accelerators run every restart at once).
CPU_ONLY = pytest.mark.skipif(jax.default_backend() != "cpu", reason="restart blocks run on CPU only")


def with_blocks(x, restart_block, chunk_size=None, n_init=N_INIT):
    """The plan ``fit`` makes for ``x``, with ``restart_block`` restarts per block (and
    ``chunk_size`` rows per chunk where given)."""
    plan = emjax.make_plan(MODEL, x, n_init=n_init)
    return dataclasses.replace(plan, restart_block=restart_block,
                               chunk_size=chunk_size or plan.chunk_size)


def assert_same_restarts(blocked, together):
    np.testing.assert_array_equal(blocked.status, together.status)
    np.testing.assert_array_equal(blocked.n_iter, together.n_iter)
    np.testing.assert_allclose(blocked.objective, together.objective, rtol=1e-12)
    for got, want in zip(blocked.params, together.params):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@CPU_ONLY
def test_restart_block_size_rule():
    # W1: 5,000 rows x 64 floats per row per restart; 52 fit, so 256 restarts -> 5 blocks of 52
    assert restart_block_size(256, 5_000, 64) == 52
    assert restart_block_size(16, 5_000, 64) == 16  # one block: every restart
    assert restart_block_size(1, 5_000, 64) is None  # one restart: rows in chunks
    assert restart_block_size(8, 500_000, 64) is None  # one restart exceeds the budget
    # W4R-like HMM: 64 sequences of ~300,000 floats each; 128 sequences (MIN_CHUNK) of 16
    # restarts would be 300x a chunk's budget: one restart at a time, its rows in chunks
    assert restart_block_size(16, 64, 300_000) == 1
    assert restart_block_size(16, 64, 300_000, groups=2) == 2  # one per device group
    # two device groups split 256 restarts: 128 each -> 3 blocks of 43 per group
    assert restart_block_size(256, 5_000, 64, groups=2) == 86
    # the budgets are arguments: 3 restarts' rows per block; chunks too small to batch
    work = MODEL.work_per_row(np.zeros((N, D)))
    assert restart_block_size(N_INIT, N, work, block_budget=3 * N * work) == 3
    assert restart_block_size(N_INIT, N, work, block_budget=0, chunk_budget=2 * MIN_CHUNK * work) == 1
    assert restart_block_size(N_INIT, N, work, block_budget=0,
                              chunk_budget=N_INIT * MIN_CHUNK * work) is None


@CPU_ONLY
def test_blocked_restarts_equal_all_at_once(x64):
    x = blobs(n=N, dtype=np.float64, seed=4)[0]
    together_plan = with_blocks(x, N_INIT)
    blocked = emjax.fit(MODEL, x, KEY, n_init=N_INIT, max_iter=40, tol=1e-8, throw=False,
                        plan=with_blocks(x, 3))  # 3 blocks of 3, the last padded
    together = emjax.fit(MODEL, x, KEY, n_init=N_INIT, max_iter=40, tol=1e-8, throw=False,
                         plan=together_plan)
    assert together_plan.restart_block >= N_INIT
    assert len(set(np.asarray(together.restarts.n_iter))) > 1  # blocks end at different times
    assert_same_restarts(blocked.restarts, together.restarts)
    assert int(blocked.best_index) == int(together.best_index)


@pytest.mark.slow
@CPU_ONLY
def test_restarts_one_at_a_time_equal_all_at_once(x64):
    """Restarts one at a time (``lax.map``, no batch axis) with their rows in chunks (as where
    even MIN_CHUNK rows of every restart overflow a chunk's budget): the same restarts as all
    at once in smaller chunks."""
    x = blobs(n=N, dtype=np.float64, seed=8)[0]
    work = MODEL.work_per_row(x)
    one_at_a_time = emjax.fit(MODEL, x, KEY, n_init=N_INIT, max_iter=40, tol=1e-8, throw=False,
                              plan=with_blocks(x, 1))
    chunk = choose_chunk_size(N, work, batch=N_INIT, budget=N_INIT * MIN_CHUNK * work)
    assert chunk < N
    together = emjax.fit(MODEL, x, KEY, n_init=N_INIT, max_iter=40, tol=1e-8, throw=False,
                         plan=with_blocks(x, N_INIT, chunk))
    assert len(set(np.asarray(together.restarts.n_iter))) > 1
    assert_same_restarts(one_at_a_time.restarts, together.restarts)


@pytest.mark.slow
@CPU_ONLY
def test_blocked_restarts_under_jit_and_vmap_over_datasets(x64):
    xs = np.stack([blobs(n=N, dtype=np.float64, seed=s)[0] for s in (5, 6)])
    keys = jax.random.split(KEY, 2)

    def fit_all(restart_block):
        def one(x, k):  # the plan made under the trace: the batched, separate-reduction forms
            plan = dataclasses.replace(emjax.make_plan(MODEL, x, n_init=N_INIT), restart_block=restart_block)
            assert not plan.formulation.one_pass and not plan.formulation.unbatched
            return emjax.fit(MODEL, x, k, n_init=N_INIT, max_iter=25, tol=1e-8, plan=plan).restarts
        return jax.jit(jax.vmap(one))(xs, keys)

    assert_same_restarts(fit_all(3), fit_all(N_INIT))


@pytest.mark.slow
def test_fit_of_concrete_inputs_equals_fit_inside_jit(x64):
    """Concrete inputs take the one-pass statistics under reassociating compiler options; inside a
    caller's jit (here only the weights are traced, the data are concrete) the separate ones,
    since a nested jit may not carry compiler options: the same fit to float64 rounding."""
    x = blobs(n=N, dtype=np.float64, seed=7)[0]
    model = emjax.GaussianMixture(3)
    direct = emjax.fit(model, x, KEY, n_init=4, max_iter=30, tol=1e-8, throw=False)
    traced_weights = lambda w: emjax.fit(model, x, KEY, weights=w, n_init=4, max_iter=30,
                                         tol=1e-8).restarts
    assert_same_restarts(direct.restarts, jax.jit(traced_weights)(np.ones(N)))


def compiled_one_pass(fn):
    """``fn`` compiled as :func:`emjax.fit` compiles a one-pass plan's program."""
    return jax.jit(fn, compiler_options=REASSOCIATING_COMPILER_OPTIONS).lower().compile()()


def test_one_pass_formulation_selects_one_variadic_reduction():
    x, resp, ref = (jnp.asarray(a, jnp.float32) for a in problem(2))

    def primitives(enabled):
        form = emjax.Formulation(one_pass=enabled)
        jaxpr = jax.make_jaxpr(lambda: g.sufficient_stats(x, resp, ref, "full", form))()
        return [e.primitive.name for e in jaxpr.eqns]

    assert primitives(True).count("reduce") == 1 and "dot_general" not in primitives(True)
    assert "reduce" not in primitives(False) and "dot_general" in primitives(False)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
@pytest.mark.parametrize("d", [1, 2, g.SMALL_D])
def test_one_pass_statistics_match_definition_in_float64(x64, d, covariance_type):
    x, resp, ref = problem(d, seed=d)
    got = compiled_one_pass(lambda: g.sufficient_stats(jnp.asarray(x), jnp.asarray(resp),
                                                       jnp.asarray(ref), covariance_type, ONE_PASS))
    for value, want in zip(got, reference_stats(x, resp, ref, covariance_type)):
        assert value.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(value), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_one_pass_moments_of_a_tight_component_far_from_the_origin_in_float32(covariance_type):
    x, resp, ref = (a.astype(np.float32) for a in problem(2, offset=1e3, spread=1e-3, seed=1))
    _, _, second = compiled_one_pass(lambda: g.sufficient_stats(
        jnp.asarray(x), jnp.asarray(resp), jnp.asarray(ref), covariance_type, ONE_PASS))
    assert second.dtype == jnp.float32
    want = reference_stats(x, resp, ref, covariance_type)[2]
    np.testing.assert_allclose(np.asarray(second, np.float64), want, rtol=1e-3,
                               atol=1e-3 * np.abs(want).max())


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_one_pass_log_density_matches_definition_in_float64(x64, covariance_type):
    d = 2
    x, _, means = problem(d, seed=8)
    a = np.random.default_rng(9).normal(size=(3, d, d))
    cov = a @ np.swapaxes(a, 1, 2) + d * np.eye(d)
    cov = cov if covariance_type == "full" else cov[0]
    got = compiled_one_pass(lambda: g.log_density(
        jnp.asarray(x), jnp.asarray(means), g.precision_cholesky(jnp.asarray(cov), covariance_type),
        covariance_type, ONE_PASS))
    covs = np.broadcast_to(cov, (3, d, d))
    want = np.stack([-0.5 * (d * np.log(2 * np.pi) + np.linalg.slogdet(c)[1]
                             + np.einsum("nd,de,ne->n", x - m, np.linalg.inv(c), x - m))
                     for m, c in zip(means, covs)])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
