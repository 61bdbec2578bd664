"""Degenerate data finish with finite results and honest statuses, in float32."""
import jax
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGMM

import emjax
from emjax import Status

from helpers import blobs

KEY = jax.random.key(0)
TYPES = ["full", "tied", "diag", "spherical"]


def check_honest(res):
    statuses = np.asarray(res.restarts.status)
    for r, s in enumerate(statuses):
        params = jax.tree_util.tree_map(lambda x: x[r], res.restarts.params)
        finite = all(np.all(np.isfinite(p)) for p in params)
        if s in (Status.CONVERGED, Status.MAX_ITER):
            assert finite and np.isfinite(res.restarts.objective[r]), (r, Status(int(s)))
    assert Status(int(res.status)).healthy
    assert all(np.all(np.isfinite(p)) for p in res.params)


def degenerate_sets():
    x, _ = blobs(n=200)
    yield "duplicates", np.repeat(x[:20], 10, axis=0)
    yield "fewer distinct points than k", np.repeat(x[:2], 50, axis=0)
    const = x.copy()
    const[:, 1] = 3.0
    yield "constant feature", const
    yield "scale 1e-8", (x * 1e-8).astype(np.float32)
    yield "scale 1e8", (x * 1e8).astype(np.float32)
    yield "offset 1e6", (x + 1e6).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("cov", TYPES)
@pytest.mark.parametrize("name, x", list(degenerate_sets()))
def test_degenerate_data_finishes_honestly(name, x, cov):
    res = emjax.fit(emjax.GaussianMixture(3, covariance_type=cov), x, KEY, n_init=4, max_iter=100,
                    throw=False)
    if name == "fewer distinct points than k" and cov != "tied":
        # three components on two distinct points: one has no rows of its own, which the collapse
        # guard calls DEGENERATE in every restart (tied covariances are not guarded)
        assert (np.asarray(res.restarts.status) == Status.DEGENERATE).all()
        return
    check_honest(res)
    assert res.params.means.dtype == np.float32


@pytest.mark.slow
@pytest.mark.parametrize("transform", [lambda x: x * 1e-8, lambda x: x * 1e8, lambda x: x + 1e6])
def test_float32_scale_and_offset_do_not_change_the_fit(transform):
    """The fit on transformed float32 data equals the transformed fit (standardisation at work),
    and reaches scikit-learn's float64 optimum on the same data."""
    x = blobs(n=500, seed=3)[0].astype(np.float64)
    model = emjax.GaussianMixture(3)
    base = emjax.fit(model, x.astype(np.float32), KEY, n_init=4, tol=1e-6)
    moved_data = transform(x).astype(np.float32)
    moved = emjax.fit(model, moved_data, KEY, n_init=4, tol=1e-6)
    expected_means = np.sort(transform(np.asarray(base.params.means, np.float64)), axis=0)
    scale = np.std(transform(x), axis=0)
    np.testing.assert_allclose(np.sort(np.asarray(moved.params.means, np.float64), axis=0) / scale,
                               expected_means / scale, atol=1e-3)
    # float32 data at offset 1e6 are quantised (steps of 1/16): compare on those very values
    same = moved_data.astype(np.float64)
    sk = SkGMM(3, n_init=4, random_state=0, reg_covar=0, tol=1e-8).fit(same)
    assert float(moved.log_likelihood) == pytest.approx(sk.score(same), abs=2e-4)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_second_moments_exact_for_features_constant_within_a_component(covariance_type):
    """float32 statistics of a feature constant within a component, far from the origin: the
    scatter must be ~0 (an expanded sum r x^2 - 2 a sum r x + N a^2 leaves ~eps N a^2)."""
    from emjax.components import gaussian as g
    rng = np.random.default_rng(1)
    x = np.c_[np.full(500, 3.0), rng.normal(size=500)].astype(np.float32)
    resp = rng.uniform(size=(2, 500)).astype(np.float32)
    ref = np.array([[3.0, 0.1], [2.5, -0.2]], np.float32)
    _, _, second = g.sufficient_stats(jax.numpy.asarray(x), jax.numpy.asarray(resp), jax.numpy.asarray(ref),
                                      covariance_type)
    want = np.einsum("kn,knd->kd", resp.astype(np.float64), (x[None] - ref[:, None].astype(np.float64)) ** 2)
    np.testing.assert_allclose(np.asarray(second), want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_digits_diag_converges_in_float32():
    """The 8x8 digits (many pixels constant within a cluster) used to end DECREASED. A restart
    may end DEGENERATE: one of these two shrinks a component to two images on its way to
    convergence, which the collapse guard rejects (with the guard off it converges there)."""
    from sklearn.datasets import load_digits
    x = load_digits().data.astype(np.float32)
    res = emjax.fit(emjax.GaussianMixture(10, "diag"), x, KEY, n_init=2, max_iter=200, throw=False)
    statuses = np.asarray(res.restarts.status)
    assert np.isin(statuses, [Status.CONVERGED, Status.DEGENERATE]).all(), emjax.core.status.describe(statuses)
    assert int(res.status) == Status.CONVERGED
    history = np.asarray(res.restarts.history)
    steps = np.diff(history, axis=1)
    assert np.nanmin(steps) > -1e-4
