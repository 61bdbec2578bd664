"""The driver and restarts: statuses, fault injection, restart independence, chunking, weights,
compilation caching, composition with jit and vmap."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from emjax import Status
from emjax.engine.restarts import _fit_jit

from helpers import blobs

KEY = jax.random.key(0)
HEALTHY = [Status.CONVERGED, Status.MAX_ITER]


def take(tree, r):
    return jax.tree_util.tree_map(lambda x: x[r], tree)


def test_fit_returns_the_best_healthy_restart(data):
    res = emjax.fit(emjax.GaussianMixture(3), data, KEY, n_init=8)
    objectives = np.asarray(res.restarts.objective)
    assert res.restarts.status.shape == (8,) and res.history.shape == (100,)
    assert int(res.best_index) == int(np.argmax(objectives))
    assert float(res.objective) == objectives.max()
    n = int(res.n_iter)
    assert np.all(np.isfinite(res.history[:n])) and np.all(np.isnan(res.history[n:]))
    assert bool(res.converged) and float(res.history[n - 1]) == float(res.objective)
    # converged means the last change was below tol
    assert abs(float(res.history[n - 1] - res.history[n - 2])) < 1e-3


@pytest.mark.slow
def test_vmapped_restarts_equal_a_loop_of_em_from_the_same_starts(x64):
    x = blobs(dtype=np.float64)[0]
    model = emjax.GaussianMixture(3, init_params="random_from_data")
    starts = emjax.init_restarts(model, x, KEY, n_init=5)
    res = emjax.fit(model, x, KEY, n_init=5, chunk_size=64)
    for r in range(5):
        single = emjax.em(model, take(starts, r), x, chunk_size=64)
        np.testing.assert_allclose(single.objective, res.restarts.objective[r], rtol=1e-12)
        np.testing.assert_allclose(single.params.means, res.restarts.params.means[r], rtol=1e-9, atol=1e-9)
        assert int(single.n_iter) == int(res.restarts.n_iter[r])


@pytest.mark.slow
def test_same_key_is_bitwise_reproducible_and_restart_r_ignores_n_init(data):
    model = emjax.GaussianMixture(3)
    a = emjax.fit(model, data, KEY, n_init=3, chunk_size=100)
    b = emjax.fit(model, data, KEY, n_init=3, chunk_size=100)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(x, y)
    small = emjax.init_restarts(model, data, KEY, n_init=3)
    large = emjax.init_restarts(model, data, KEY, n_init=7)
    for x, y in zip(jax.tree_util.tree_leaves(small), jax.tree_util.tree_leaves(large)):
        # same keys; only the batch XLA vectorises over differs, so equal up to float32 rounding
        np.testing.assert_allclose(x, y[:3], rtol=1e-5, atol=1e-6)
    c = emjax.fit(model, data, KEY, n_init=7, chunk_size=100)
    np.testing.assert_allclose(c.restarts.objective[:3], a.restarts.objective, rtol=1e-5)


@jax.jit
def _fit_in_a_trace(init_params, x):
    """``fit`` of GaussianMixture(3) from ``init_params`` inside a caller's ``jit``: one program
    that every case of the test below runs."""
    return emjax.fit(emjax.GaussianMixture(3), x, KEY, n_init=4, init_params=init_params, throw=False)


@pytest.mark.parametrize("where", [0, -1])
@pytest.mark.parametrize("fault", ["nan", "singular"])
def test_faulty_restarts_are_never_picked_nor_converged(data, where, fault):
    """A faulty start given on the host is refused by name; given inside a trace (where no host
    check can run) its restart fails with an honest status and is never picked."""
    model = emjax.GaussianMixture(3)
    starts = emjax.init_restarts(model, data, KEY, n_init=4)
    clean = emjax.fit(model, data, KEY, n_init=4, init_params=starts)
    cov = starts.covariances
    bad = jnp.full_like(cov[where], jnp.nan) if fault == "nan" else jnp.zeros_like(cov[where])
    faulty = starts._replace(covariances=cov.at[where].set(bad))
    r = where % 4
    with pytest.raises(ValueError, match=f"init_params.*restart {r}: params.covariances"):
        emjax.fit(model, data, KEY, n_init=4, init_params=faulty)
    res = _fit_in_a_trace(faulty, data)
    expected = Status.NONFINITE if fault == "nan" else Status.DEGENERATE
    assert int(res.restarts.status[r]) == expected
    assert int(res.restarts.n_iter[r]) == 0 and int(res.best_index) != r
    others = [i for i in range(4) if i != r]
    np.testing.assert_allclose(np.asarray(res.restarts.objective)[others],
                               np.asarray(clean.restarts.objective)[others], rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(res.restarts.status)[others],
                                  np.asarray(clean.restarts.status)[others])


@pytest.mark.slow
def test_all_restarts_failing_raises_with_the_reasons(data):
    """Every restart failing inside the fit (here: an infinite objective from float32 data at
    1e20, reliability finding F1) raises FitError naming the statuses; throw=False returns them."""
    model = emjax.GaussianMixture(3, "diag")
    huge = np.asarray(data, np.float32) * np.float32(1e20)
    with pytest.raises(emjax.FitError, match="all 2 restarts failed.*NONFINITE"):
        emjax.fit(model, huge, KEY, n_init=2)
    res = emjax.fit(model, huge, KEY, n_init=2, throw=False)
    assert list(np.asarray(res.restarts.status)) == [Status.NONFINITE] * 2


class _BreaksOnSecondStep(emjax.GaussianMixture):
    """Normal first M-step (from exactly uniform weights); the second one is sabotaged."""

    def m_step(self, stats, params):
        new = super().m_step(stats, params)
        first = jnp.all(params.weights == jnp.float32(1 / 3))
        return jax.tree_util.tree_map(lambda a, b: jnp.where(first, a, b), new, self.sabotage(new))


class _NaNOnSecondStep(_BreaksOnSecondStep):
    def sabotage(self, new):
        return new._replace(means=new.means.at[0, 0].set(jnp.nan))


class _ShrinksOnSecondStep(_BreaksOnSecondStep):
    def sabotage(self, new):
        return new._replace(covariances=new.covariances * 0.05)


@pytest.mark.parametrize("model, status", [(_NaNOnSecondStep(3), Status.NONFINITE),
                                           (_ShrinksOnSecondStep(3), Status.DECREASED)])
def test_failure_mid_fit_is_a_status_and_keeps_the_last_good_params(model, status):
    x = blobs()[0]
    start = take(emjax.init_restarts(emjax.GaussianMixture(3), x, KEY, n_init=1), 0)
    start = start._replace(weights=jnp.full(3, 1 / 3, jnp.float32))
    one_step = emjax.em(emjax.GaussianMixture(3), start, x, max_iter=1, tol=0.0, throw=False)
    res = emjax.em(model, start, x, max_iter=50, tol=0.0, throw=False)
    assert int(res.status) == status and int(res.n_iter) == 2 and not bool(res.converged)
    np.testing.assert_allclose(res.params.means, one_step.params.means, rtol=1e-6)
    np.testing.assert_allclose(res.objective, one_step.objective, rtol=1e-6)
    assert np.isfinite(res.history[0]) and np.all(np.isnan(res.history[2:]))
    with pytest.raises(emjax.FitError, match=Status(status).name):
        emjax.em(model, start, x, max_iter=50, tol=0.0)


@pytest.mark.slow
def test_max_iter_is_reported_and_warned(data):
    model = emjax.GaussianMixture(3)
    with pytest.warns(emjax.ConvergenceWarning):
        res = emjax.fit(model, data, KEY, n_init=2, max_iter=2, tol=0.0)
    assert list(np.asarray(res.restarts.status)) == [Status.MAX_ITER] * 2
    assert list(np.asarray(res.restarts.n_iter)) == [2, 2] and not bool(res.converged)


@pytest.mark.slow
def test_chunked_equals_unchunked_statistics(x64):
    x, _ = blobs(n=1001, d=3, dtype=np.float64)
    for cov in ["full", "tied", "diag", "spherical"]:
        model = emjax.GaussianMixture(3, covariance_type=cov)
        start = take(emjax.init_restarts(model, x, KEY, n_init=1), 0)
        whole = emjax.em(model, start, x, max_iter=5, tol=0.0, throw=False)
        chunked = emjax.em(model, start, x, max_iter=5, tol=0.0, chunk_size=128, throw=False)
        np.testing.assert_allclose(chunked.history, whole.history, rtol=1e-12)
        for a, b in zip(chunked.params, whole.params):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_zero_weights_remove_rows_and_integer_weights_repeat_rows(x64):
    x, _ = blobs(n=200, dtype=np.float64)
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 4, size=len(x))
    model = emjax.GaussianMixture(3, covariance_type="full")
    start = take(emjax.init_restarts(model, x, KEY, n_init=1), 0)
    weighted = emjax.em(model, start, x, weights=counts, max_iter=10, tol=0.0, throw=False)
    repeated = emjax.em(model, start, np.repeat(x, counts, axis=0), max_iter=10, tol=0.0, throw=False)
    removed = emjax.em(model, start, x[counts > 0], weights=counts[counts > 0], max_iter=10,
                       tol=0.0, throw=False)
    for other in (repeated, removed):
        np.testing.assert_allclose(weighted.history, other.history, rtol=1e-10)
        for a, b in zip(weighted.params, other.params):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.slow
@pytest.mark.usefixtures("no_compiled_programs")
def test_a_second_fit_with_an_equal_model_and_shapes_does_not_recompile(data):
    emjax.fit(emjax.GaussianMixture(3, covariance_type="diag"), data, KEY, n_init=2)
    before = _fit_jit._cache_size()
    emjax.fit(emjax.GaussianMixture(3, covariance_type="diag"), data + 1.0, jax.random.key(5),
              n_init=2, tol=1e-4)
    assert _fit_jit._cache_size() == before
    emjax.fit(emjax.GaussianMixture(4, covariance_type="diag"), data, KEY, n_init=2)
    assert _fit_jit._cache_size() == before + 1


@pytest.mark.slow
def test_fit_composes_with_vmap_over_datasets_and_jit():
    xs = np.stack([blobs(n=120, seed=s)[0] for s in range(4)])
    keys = jax.random.split(KEY, 4)
    model = emjax.GaussianMixture(3)
    batched = jax.jit(jax.vmap(lambda x, k: emjax.fit(model, x, k, n_init=4).params))(xs, keys)
    assert batched.means.shape == (4, 3, 2)
    for i in range(4):
        alone = emjax.fit(model, xs[i], keys[i], n_init=4)
        np.testing.assert_allclose(batched.means[i], alone.params.means, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_dtype_in_is_dtype_out(data):
    res = emjax.fit(emjax.GaussianMixture(2), data, KEY)
    assert all(leaf.dtype == jnp.float32 for leaf in res.params)
    assert res.objective.dtype == jnp.float32


@pytest.mark.slow
def test_float64_under_x64(x64, data):
    res = emjax.fit(emjax.GaussianMixture(2), data.astype(np.float64), KEY)
    assert all(leaf.dtype == jnp.float64 for leaf in res.params)
    ints = emjax.fit(emjax.GaussianMixture(2), np.round(data * 100).astype(np.int64), KEY)
    assert ints.params.means.dtype == jnp.float64
