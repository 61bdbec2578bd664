"""Streaming EM (emjax.stream_fit) over host chunks.

References: scikit-learn's EM on the whole array (same start, float64, sklearn regularisation),
and the in-memory fit's restarts for the MAP objective with weights; bad sources raise clearly.
"""
import warnings

import jax
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import emjax

N_ITER = 15


def make_data(seed=0, n=500, d=3, k=3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(k, d))
    labels = rng.integers(0, k, size=n)
    return centres[labels] + rng.normal(size=(n, d)) + np.array([5.0, -3.0, 10.0])[:d]


def ragged_chunks(x, w=None, cuts=(200, 260, 400)):
    """Chunks of unequal size (all no longer than the first), with weights when given."""
    parts = np.split(np.arange(len(x)), cuts)
    return [x[i] if w is None else (x[i], w[i]) for i in parts]


@pytest.mark.slow
def test_stream_matches_sklearn_on_all_rows(x64, tmp_path):
    x = make_data()
    rng = np.random.default_rng(1)
    w0 = rng.dirichlet(np.full(3, 5.0))
    m0 = x[rng.choice(len(x), 3, replace=False)] + rng.normal(scale=0.3, size=(3, 3))
    cov0 = np.stack([np.eye(3) * s for s in (0.8, 1.2, 2.0)])
    sk = SkGaussianMixture(3, covariance_type="full", max_iter=N_ITER, tol=0.0, reg_covar=1e-6,
                           weights_init=w0, means_init=m0, precisions_init=np.linalg.inv(cov0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk.fit(x)
    model = emjax.GaussianMixture(3, covariance_type="full", pseudo_count=0)
    start = emjax.GMMParams(w0[None], m0[None], cov0[None])
    path = tmp_path / "x.npy"
    np.save(path, x)
    for source in (ragged_chunks(x), str(path)):
        res = emjax.stream_fit(model, source, jax.random.key(0), init_params=start, max_iter=N_ITER,
                               tol=0.0, rows_per_chunk=200, throw=False)  # chunk shapes as the list
        assert int(res.n_iter) == N_ITER and int(res.status) == emjax.Status.MAX_ITER
        np.testing.assert_allclose(res.params.weights, sk.weights_, rtol=1e-8)
        np.testing.assert_allclose(res.params.means, sk.means_, rtol=1e-8)
        np.testing.assert_allclose(res.params.covariances, sk.covariances_, rtol=1e-8)
        np.testing.assert_allclose(res.log_likelihood, sk.score(x), rtol=1e-8)


def test_stream_equals_in_memory_fit_with_weights_and_reports_progress(x64):
    x = make_data(seed=2)
    weights = np.random.default_rng(3).uniform(0.0, 2.0, size=len(x))
    model = emjax.GaussianMixture(3, covariance_type="diag")
    means = np.stack([x[[i, i + 1, i + 2]] for i in (0, 3, 6)])
    start = emjax.GMMParams(np.full((3, 3), 1 / 3), means, np.full((3, 3, 3), 2.0))
    ref = emjax.fit(model, x, jax.random.key(4), n_init=3, weights=weights, init_params=start,
                    max_iter=60, tol=1e-7, throw=False)
    reports = []
    res = emjax.stream_fit(model, lambda: iter(ragged_chunks(x, weights)), jax.random.key(4),
                           n_init=3, init_params=start, max_iter=60, tol=1e-7,
                           on_pass=reports.append, throw=False)
    np.testing.assert_array_equal(res.restarts.status, ref.restarts.status)
    np.testing.assert_array_equal(res.restarts.n_iter, ref.restarts.n_iter)
    for got, want in zip(jax.tree_util.tree_leaves(res.restarts), jax.tree_util.tree_leaves(ref.restarts)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert int(res.best_index) == int(ref.best_index)
    # two standardisation passes, then one pass per evaluated parameter set (start + n_iter)
    assert [r.phase for r in reports] == ["transform"] * 2 + ["em"] * (int(res.restarts.n_iter.max()) + 1)
    assert all(r.rows == len(x) and r.rows_per_second > 0 for r in reports)
    assert reports[-1].running == 0 and reports[-1].objective == pytest.approx(float(res.objective))


@pytest.mark.slow
def test_stream_with_missing_values_equals_in_memory_fit(x64, tmp_path):
    """NaN in the first half of the rows, one row with nothing observed, and a last chunk in which
    feature 1 is never observed (allowed: it is observed elsewhere)."""
    x = make_data(seed=5)
    rng = np.random.default_rng(6)
    x[:250][rng.random((250, 3)) < 0.2] = np.nan
    x[3] = np.nan
    x[400:, 1] = np.nan
    path = tmp_path / "holes.npy"
    np.save(path, x)
    model = emjax.GaussianMixture(3, covariance_type="full", missing="marginalize")
    means = np.stack([x[[i, i + 10, i + 20]] for i in (300, 303)])  # rows without NaN
    start = emjax.GMMParams(np.full((2, 3), 1 / 3), means, np.tile(np.eye(3), (2, 3, 1, 1)))
    ref = emjax.fit(model, x, None, n_init=2, init_params=start, max_iter=15, tol=1e-8, throw=False)
    res = emjax.stream_fit(model, str(path), None, n_init=2, init_params=start, max_iter=15,
                           tol=1e-8, rows_per_chunk=200, throw=False)  # chunks 200, 200, 100
    np.testing.assert_array_equal(res.restarts.status, ref.restarts.status)
    np.testing.assert_array_equal(res.restarts.n_iter, ref.restarts.n_iter)
    assert int(ref.restarts.n_iter.min()) > 5
    for got, want in zip(jax.tree_util.tree_leaves(res.restarts), jax.tree_util.tree_leaves(ref.restarts)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_stream_refuses_a_feature_never_observed():
    x = np.ones((6, 2))
    x[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"transform of the streamed rows is not finite.*no observed"):
        emjax.stream_fit(emjax.GaussianMixture(1, missing="marginalize"), [x[:3], x[3:]],
                         jax.random.key(0), max_iter=2)


@pytest.mark.parametrize("source, match", [
    ([np.zeros((5, 3)), np.zeros((5, 4))], r"chunk 1 .*shape \(4,\).*\(3,\)"),
    ([np.zeros((5, 3), np.float32), np.zeros((5, 3), np.float64)], r"chunk 1 .*dtype float64.*float32"),
    ([np.ones((5, 3)), np.array([[1.0, np.nan, 0.0]])], r"chunk 1 of the data source \(pass \d+\): data contains 1 NaN"),
    ([], r"no rows"),
    (lambda: iter(()), r"no rows"),
    ([(np.ones((4, 3)), np.array([1.0, -1.0, 1.0, 1.0]))], r"chunk 0 .*weights must be non-negative"),
])
def test_bad_sources_raise_naming_the_chunk(source, match):
    with pytest.raises(ValueError, match=match):
        emjax.stream_fit(emjax.GaussianMixture(1), source, jax.random.key(0), max_iter=2)


def test_one_shot_iterator_is_refused():
    with pytest.raises(TypeError, match="read only once"):
        emjax.stream_fit(emjax.GaussianMixture(1), iter([np.ones((4, 2))]), jax.random.key(0))
