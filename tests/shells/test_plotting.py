"""Plots of fits and restarts, datasets: checked on hand-made parameters (no fitting)."""
import jax
import numpy as np
import pytest

import emjax
from emjax.shells import plotting
from emjax.shells.datasets import load_old_faithful, make_mixture
from emjax.engine.driver import EMResult

plt = plotting.pyplot()

COVARIANCES = {"full": np.array([[[4.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 9.0]]]),
               "tied": np.array([[4.0, 1.0], [1.0, 1.0]]),
               "diag": np.array([[4.0, 1.0], [1.0, 9.0]]),
               "spherical": np.array([4.0, 1.0])}


@pytest.mark.parametrize("covariance_type", list(COVARIANCES))
def test_plot_fit_ellipses_match_covariances(covariance_type):
    model = emjax.GaussianMixture(2, covariance_type)
    params = emjax.GMMParams(np.array([0.3, 0.7], np.float32),
                             np.array([[0.0, 0.0], [10.0, 5.0]], np.float32),
                             COVARIANCES[covariance_type].astype(np.float32))
    X = np.asarray(model.sample(jax.random.key(0), params, 300)[0])
    fig, ax = plt.subplots()
    plotting.plot_fit(ax, model, params, X)
    full = plotting.full_covariances(params.covariances, covariance_type, 2, 2)
    assert len(ax.patches) == 4
    for i, (one, two) in enumerate(zip(ax.patches[::2], ax.patches[1::2])):
        axes = 2 * np.sqrt(np.linalg.eigvalsh(full[i]))
        assert np.allclose(sorted([one.width, one.height]), axes)
        assert np.allclose(sorted([two.width, two.height]), 2 * axes)
        assert np.allclose(one.center, params.means[i])
        # The ellipse's major axis points along the covariance's top eigenvector.
        major = np.linalg.eigh(full[i])[1][:, 1]
        theta = np.radians(one.angle)
        assert abs(np.dot(major, [np.cos(theta), np.sin(theta)])) == pytest.approx(1, abs=1e-6)
    plt.close(fig)


def test_plot_restart_objectives_skips_failed_restarts():
    objective = np.array([-2.0, -1.0, -1.5, np.nan, 5.0])
    status = np.array([emjax.Status.CONVERGED, emjax.Status.CONVERGED, emjax.Status.MAX_ITER,
                       emjax.Status.NONFINITE, emjax.Status.DECREASED])
    restarts = EMResult(None, objective, objective, np.ones(5), status, None, np.ones(5))
    fig, ax = plt.subplots()
    plotting.plot_restart_objectives(ax, restarts)
    assert sum(p.get_height() for p in ax.patches) == 3
    assert ax.lines[0].get_xdata()[0] == -1.0
    assert "2 failed" in ax.get_title()
    plt.close(fig)


def test_old_faithful():
    X = load_old_faithful()
    assert X.shape == (272, 2) and X.dtype == np.float64
    assert X[0].tolist() == [3.6, 79.0]
    assert X.mean(axis=0) == pytest.approx([3.487783, 70.897059], abs=1e-6)


def test_make_mixture_is_seeded_and_labelled():
    X, labels = make_mixture(0, 2000, n_components=4, n_features=3)
    assert X.shape == (2000, 3) and labels.shape == (2000,) and set(labels) == {0, 1, 2, 3}
    assert np.array_equal(X, make_mixture(0, 2000, n_components=4, n_features=3)[0])
    key = jax.random.key(7)
    assert np.array_equal(make_mixture(key, 50)[0], make_mixture(key, 50)[0])
    assert not np.array_equal(make_mixture(key, 50)[0], make_mixture(8, 50)[0])
    with pytest.raises(ValueError, match="n_features"):
        make_mixture(0, 10, n_features=1)
