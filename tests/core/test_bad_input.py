"""Bad input is refused host-side with an error naming the argument, the problem and where."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from emjax import GMMParams

KEY = jax.random.key(0)
X = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)


def fit(x=X, model=None, **kw):
    return emjax.fit(model or emjax.GaussianMixture(2), x, KEY, **kw)


@pytest.mark.parametrize("on_device", [False, True])
@pytest.mark.parametrize("value, match", [(np.nan, r"data contains 1 NaN value\(s\); the first at index \(7, 1\)"),
                                          (np.inf, r"data contains 1 inf")])
def test_nonfinite_data_names_count_and_first_index(value, match, on_device):
    x = X.copy()
    x[7, 1] = value
    with pytest.raises(ValueError, match=match):
        fit(jnp.asarray(x) if on_device else x)


def test_device_data_is_checked_in_place_not_copied():
    x = jnp.asarray(X)
    data, weights = emjax.core.validation.prepare_inputs(emjax.GaussianMixture(2), x, None)
    assert data is x
    converted, _ = emjax.core.validation.prepare_inputs(emjax.GaussianMixture(2), jnp.arange(6).reshape(3, 2), None)
    assert converted.dtype == jnp.result_type(float)


@pytest.mark.parametrize("x, match", [
    (X[:, 0], "data must have 2 dimensions; got shape \\(50,\\).*reshape\\(-1, 1\\)"),
    (X[None], "data must have 2 dimensions"),
    (np.zeros((0, 2), np.float32), "at least one sample"),
    (np.zeros((5, 0), np.float32), "at least one sample and one feature"),
    (X[:1], r"n_samples=1 .* must be >= n_components=2"),
])
def test_wrong_shapes(x, match):
    with pytest.raises(ValueError, match=match):
        fit(x)


@pytest.mark.parametrize("x", [X.astype(np.complex64), X.astype(object), np.array([["a", "b"]] * 5)])
def test_non_real_dtypes(x):
    with pytest.raises(TypeError, match="data must be"):
        fit(x)


def test_integer_data_is_converted_and_float32_stays_float32():
    ints = np.round(X * 10).astype(np.int32)
    assert fit(ints).params.means.dtype == jnp.float32
    assert fit(X.astype(np.float32)).params.means.dtype == jnp.float32


@pytest.mark.parametrize("w, match", [
    (-np.ones(50), "weights must be non-negative; 50 are negative, the first at index 0"),
    (np.zeros(50), "weights are all zero"),
    (np.ones(49), r"weights must have shape \(50,\)"),
    (np.r_[np.ones(49), np.nan], r"weights contains 1 NaN value\(s\); the first at index 49"),
    (np.r_[1.0, np.zeros(49)], r"n_samples=1 \(rows with positive weight\) must be >= n_components=2"),
])
def test_bad_weights(w, match):
    with pytest.raises(ValueError, match=match):
        fit(weights=w)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_components=0), "n_components must be a positive integer; got 0"),
    (dict(n_components=2.5), "n_components must be a positive integer"),
    (dict(n_components=2, covariance_type="ful"), r"covariance_type must be one of \('full', 'tied', 'diag', 'spherical'\); got 'ful'"),
    (dict(n_components=2, init_params="kmeans+"), "init_params must be one of"),
    (dict(n_components=2, pseudo_count=-1.0), "pseudo_count must be a finite number >= 0"),
    (dict(n_components=2, reg_covar=-1.0), "reg_covar must be a finite number >= 0"),
])
def test_bad_model_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        emjax.GaussianMixture(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_init=0), "n_init must be a positive integer"),
    (dict(max_iter=0), "max_iter must be a positive integer"),
    (dict(tol=-1.0), "tol must be a finite non-negative number"),
    (dict(chunk_size=0), "chunk_size must be a positive integer"),
])
def test_bad_fit_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(**kwargs)


def test_em_params_of_the_wrong_shape():
    model = emjax.GaussianMixture(2, covariance_type="full")
    good = GMMParams(jnp.full(2, 0.5), jnp.zeros((2, 2)), jnp.stack([jnp.eye(2)] * 2))
    emjax.em(model, good, X, max_iter=2, throw=False)
    with pytest.raises(ValueError, match=r"params.covariances must have shape \(2, 2, 2\).*got \(2, 2\)"):
        emjax.em(model, good._replace(covariances=jnp.eye(2)), X)
    with pytest.raises(ValueError, match=r"params.means must have shape \(2, 2\)"):
        emjax.em(model, good._replace(means=jnp.zeros((3, 2))), X)
    with pytest.raises(TypeError, match="params must be GMMParams"):
        emjax.em(model, {"weights": good.weights}, X)


def test_init_params_must_carry_the_restart_axis():
    model = emjax.GaussianMixture(2)
    starts = emjax.init_restarts(model, X, KEY, n_init=3)
    with pytest.raises(ValueError, match="leading axis of length n_init=4"):
        fit(model=model, n_init=4, init_params=starts)
