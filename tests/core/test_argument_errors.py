"""Ordinary mistakes name the argument, before anything is traced (findings F18, F19, F21, F22):
the key, a swapped model, tol/n_init/max_iter/chunk_size, init_params given as a method name,
starting parameters that are not a distribution or not positive definite, a Bayesian network's
parents, HMM data as a list."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax

KEY = jax.random.key(0)
X = np.r_[np.random.default_rng(0).normal(size=(40, 2)),
          np.random.default_rng(1).normal(size=(40, 2)) + 4].astype(np.float32)
GMM = emjax.GaussianMixture(2, "diag")
START = emjax.GMMParams(np.array([0.5, 0.5], np.float32), np.array([[0, 0], [4, 4]], np.float32),
                        np.ones((2, 2), np.float32))
OPTIONS = dict(max_iter=5, throw=False)


@pytest.mark.parametrize("key, error", [
    (None, r"key must be a PRNG key, e.g. jax.random.key\(0\), or an integer seed; got None"),
    ("0", "key must be a PRNG key.*got str"),
    (0.5, "key must be a PRNG key.*got float"),
    (jax.random.split(jax.random.key(0), 3), r"key must be a single PRNG key; got a batch of keys of shape \(3,\)"),
    (jax.random.split(jax.random.PRNGKey(0), 3), r"key must be a single PRNG key; got a batch of keys of shape \(3, 2\)"),
    (np.zeros(3, np.float32), r"key must be a PRNG key.*float32 and shape \(3,\)"),
])
@pytest.mark.parametrize("entry", ["fit", "init_restarts", "select", "stream_fit"])
def test_bad_keys_name_the_argument(key, error, entry):
    call = {
        "fit": lambda: emjax.fit(GMM, X, key, **OPTIONS),
        "init_restarts": lambda: emjax.init_restarts(GMM, X, key, n_init=2),
        "select": lambda: emjax.select({"n_components": 2}, X, key, **OPTIONS),
        "stream_fit": lambda: emjax.stream_fit(GMM, X, key, **OPTIONS),
    }[entry]
    with pytest.raises(TypeError, match=error):
        call()


def test_an_int_key_is_jax_random_key_of_it_and_old_keys_still_work():
    by_int = emjax.init_restarts(GMM, X, 7, n_init=2)
    by_key = emjax.init_restarts(GMM, X, jax.random.key(7), n_init=2)
    by_numpy_int = emjax.init_restarts(GMM, X, np.int64(7), n_init=2)
    for a, b in ((by_int, by_key), (by_numpy_int, by_key)):
        jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
    legacy = emjax.init_restarts(GMM, X, jax.random.PRNGKey(7), n_init=2)
    assert np.isfinite(np.asarray(legacy.means)).all()
    # traced integer seeds (vmap over seeds) become keys too
    seeds = jax.vmap(lambda s: emjax.init_restarts(GMM, X, s, n_init=2).means)(jnp.array([3, 7]))
    # the batched program rounds float32 k-means++ sums in another order
    np.testing.assert_allclose(seeds[1], by_key.means, rtol=1e-4, atol=1e-6)


def test_key_may_be_none_when_starts_are_given():
    starts = jax.tree_util.tree_map(lambda a: a[None], START)
    result = emjax.fit(GMM, X, None, init_params=starts, **OPTIONS)
    assert np.isfinite(float(result.objective))


@pytest.mark.parametrize("call, signature", [
    (lambda: emjax.fit(X, GMM, KEY), r"fit\(model, data, key"),
    (lambda: emjax.init_restarts(X, GMM, KEY, n_init=2), r"fit\(model, data, key"),
    (lambda: emjax.em(X, START, GMM), r"em\(model, params, data"),
    (lambda: emjax.bic(START, GMM, X), r"bic\(model, params, data"),
])
def test_swapped_arguments_say_the_first_must_be_a_model(call, signature):
    with pytest.raises(TypeError, match=f"the first argument must be a model.*{signature}"):
        call()


@pytest.mark.parametrize("options, error", [
    ({"tol": None}, "tol must be a finite non-negative number; got None"),
    ({"tol": "1e-3"}, "tol must be a finite non-negative number; got '1e-3'"),
    ({"tol": -1.0}, "tol must be a finite non-negative number"),
    ({"n_init": 0}, "n_init must be a positive integer; got 0"),
    ({"n_init": -2}, "n_init must be a positive integer; got -2"),
    ({"n_init": 2.0}, "n_init must be a positive integer; got 2.0"),
    ({"max_iter": 0}, "max_iter must be a positive integer; got 0"),
    ({"max_iter": 1.5}, "max_iter must be a positive integer; got 1.5"),
    ({"chunk_size": 0}, "chunk_size must be a positive integer or None; got 0"),
    ({"chunk_size": -8}, "chunk_size must be a positive integer or None; got -8"),
    ({"chunk_size": True}, "chunk_size must be a positive integer or None; got True"),
    ({"chunk_size": 2.5}, "chunk_size must be a positive integer or None; got 2.5"),
])
def test_bad_options_name_the_option(options, error):
    with pytest.raises(ValueError, match=error):
        emjax.fit(GMM, X, KEY, **{**OPTIONS, **options})
    if "n_init" not in options:
        with pytest.raises(ValueError, match=error):
            emjax.em(GMM, START, X, **{**OPTIONS, **options})


def test_init_params_as_a_method_name_points_to_the_model_field():
    with pytest.raises(TypeError, match=r"init_params of fit takes starting parameters.*"
                                        r"GaussianMixture\(2, init_params='kmeans'\)"):
        emjax.fit(GMM, X, KEY, init_params="kmeans")  # F19: AttributeError 'str' ... 'ndim'


@pytest.mark.parametrize("params, error", [
    (START._replace(weights=START.weights * 3), r"params.weights must sum to 1; it sums to 3"),  # F21
    (START._replace(weights=np.array([-0.5, 1.5], np.float32)), r"params.weights must be non-negative; entry 0 is -0.5"),
    (START._replace(weights=np.array([np.nan, 1.0], np.float32)), r"params.weights must be finite"),
    (START._replace(covariances=np.array([[1, 1], [1, 0]], np.float32)),
     r"params.covariances must be positive \(diag variances\); entry \(1, 1\) is 0"),
    (START._replace(means=np.array([[0, np.inf], [4, 4]], np.float32)), r"params.means contains 1 inf"),
])
def test_em_refuses_starting_values_that_are_not_parameters(params, error):
    with pytest.raises(ValueError, match=error):
        emjax.em(GMM, params, X)


def test_full_covariances_must_be_positive_definite_and_restarts_are_named():
    full = emjax.GaussianMixture(2, "full")
    cov = np.stack([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]]).astype(np.float32)  # eigenvalues 3, -1
    params = START._replace(covariances=cov)
    with pytest.raises(ValueError, match=r"params.covariances\[1\] must be positive definite; its "
                                         r"smallest eigenvalue is -1"):
        emjax.em(full, params, X)
    good = params._replace(covariances=np.stack([np.eye(2)] * 2).astype(np.float32))
    starts = jax.tree_util.tree_map(lambda a, b: np.stack([a, b]), good, params)
    with pytest.raises(ValueError, match=r"init_params .*restart 1: params.covariances\[1\] must be "
                                         "positive definite"):
        emjax.fit(full, X, KEY, n_init=2, init_params=starts)


def test_discrete_and_hmm_starts_must_be_distributions():
    bernoulli = emjax.BernoulliMixture(2)
    data = (np.random.default_rng(0).random((30, 3)) < 0.5).astype(np.float32)
    probs = np.full((2, 3), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"params.weights must sum to 1; it sums to 2"):
        emjax.em(bernoulli, emjax.BernoulliMixtureParams(np.ones(2, np.float32), probs), data)
    with pytest.raises(ValueError, match=r"params.probs must be non-negative; entry \(0, 1\) is -0.5 \(2 such entries\)"):
        emjax.em(bernoulli, emjax.BernoulliMixtureParams(np.full(2, 0.5, np.float32),
                                                         probs * np.array([1, -1, 1], np.float32)), data)


def test_bayesian_network_parents_of_the_wrong_type():
    with pytest.raises(ValueError, match=r"the parents of variable 1 must be a variable index or a "
                                         r"sequence of them; got 0.0"):
        emjax.BayesianNetwork({1: 0.0}, cardinalities=(2, 2))  # F22: 'float' object is not iterable
    assert emjax.BayesianNetwork({1: [0]}, cardinalities=(2, 2)).parents == ((), (0,))


def test_hmm_data_as_a_list_is_the_tuple():
    x = np.random.default_rng(0).normal(size=(2, 20, 2)).astype(np.float32)
    lengths = np.array([20, 14])
    model = emjax.GaussianHMM(2, covariance_type="diag")
    as_list = emjax.fit(model, [x, lengths], KEY, **OPTIONS)  # F22: numpy inhomogeneous shape
    as_tuple = emjax.fit(model, (x, lengths), KEY, **OPTIONS)
    np.testing.assert_array_equal(as_list.objective, as_tuple.objective)
    # a list of equal-length sequences is still sequences, not (x, lengths)
    two = emjax.fit(model, [x[0], x[1]], KEY, **OPTIONS)
    np.testing.assert_array_equal(two.objective, emjax.fit(model, x, KEY, **OPTIONS).objective)
