"""Methods used after a fit check their data and parameters as ``fit`` does (issue 15 item 4,
finding F16): feature count, dimensions, NaN/inf, parameters of another covariance type, the
array-likes ``fit`` takes; and they check nothing inside jit/vmap/grad or the engine."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)
X = np.r_[RNG.normal(size=(60, 2)), RNG.normal(size=(60, 2)) + 4].astype(np.float32)


MEANS = np.array([[0.0, 0.0], [4.0, 4.0]], np.float32)
HALVES = np.array([0.5, 0.5], np.float32)
GMM = emjax.GaussianMixture(2, "diag")
GMM_PARAMS = emjax.GMMParams(HALVES, MEANS, np.array([[1.0, 1.2], [0.8, 1.0]], np.float32))
FEATURES = r"data has 1 feature\(s\) but the parameters were fitted on 2"
_FITTED = {}


def vbgmm_params():
    """Fitted once per module (a VBGMM's parameters are not written by hand here)."""
    if "vbgmm" not in _FITTED:
        _FITTED["vbgmm"] = emjax.fit(VBGMM, X, KEY, max_iter=10, throw=False).params
    return _FITTED["vbgmm"]


VBGMM = emjax.BayesianGaussianMixture(2, "diag")


@pytest.mark.parametrize("model", [GMM, emjax.BayesianGaussianMixture(2, "diag")])
@pytest.mark.parametrize("method", ["log_prob", "posterior", "predict"])
def test_gaussian_methods_refuse_bad_rows(model, method):
    params = GMM_PARAMS if model is GMM else vbgmm_params()
    call = lambda x: getattr(model, method)(params, x)
    with pytest.raises(ValueError, match=FEATURES):
        call(X[:, :1])
    with pytest.raises(ValueError, match=r"2 dimensions; got shape \(2,\).*x.reshape\(1, -1\) for one sample"):
        call(X[0])
    with pytest.raises(ValueError, match=r"data contains 1 NaN value\(s\); the first at index \(0, 0\)"):
        call(np.array([[np.nan, 0.0]]))  # F16: predict gave label 0
    with pytest.raises(ValueError, match="inf"):
        call(np.array([[np.inf, 0.0]]))
    # the array-likes fit takes (a list; an object with __array__, as a pandas DataFrame) give
    # what the array gives
    np.testing.assert_array_equal(np.asarray(call(X[:5].tolist())), np.asarray(call(X[:5])))
    np.testing.assert_array_equal(np.asarray(call(ArrayLike(X[:5]))), np.asarray(call(X[:5])))


class ArrayLike:
    """Stands in for a pandas DataFrame (pandas is not a dependency): only ``__array__``."""

    def __init__(self, values):
        self.values = values

    def __array__(self, dtype=None, copy=None):
        return self.values if dtype is None else self.values.astype(dtype)


def test_missing_values_are_scored_on_the_observed_features():
    """With missing="marginalize", a NaN row is scored on its observed coordinate: a diagonal
    Gaussian's marginal is the 1-D normal of that coordinate (NumPy reference); inf still fails."""
    model = emjax.GaussianMixture(2, "diag", missing="marginalize")
    p = GMM_PARAMS
    rows = np.array([[np.nan, 0.3], [4.1, np.nan]], np.float32)
    w, m, v = (np.asarray(a, np.float64) for a in p)
    obs = ~np.isnan(rows)
    dens = np.stack([np.sum(np.where(obs, -0.5 * (np.log(2 * np.pi * v[k]) + (np.nan_to_num(rows) - m[k]) ** 2
                                               / v[k]), 0), axis=1) for k in range(2)]) + np.log(w)[:, None]
    np.testing.assert_allclose(model.log_prob(p, rows), np.logaddexp(*dens), rtol=1e-5)
    np.testing.assert_array_equal(model.predict(p, rows), np.argmax(dens, axis=0))
    with pytest.raises(ValueError, match="inf"):
        model.log_prob(p, np.array([[np.inf, 0.0]]))


def test_impute_takes_nan_whatever_missing_is_but_checks_the_rest():
    filled = GMM.impute(GMM_PARAMS, np.array([[np.nan, 0.5]]))
    assert np.isfinite(np.asarray(filled)).all() and float(filled[0, 1]) == 0.5
    with pytest.raises(ValueError, match=FEATURES):
        GMM.impute(GMM_PARAMS, np.array([[np.nan]]))


def test_sample_checks_n_key_and_params():
    x, labels = GMM.sample(KEY, GMM_PARAMS, 5)
    assert x.shape == (5, 2) and labels.shape == (5,)
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            GMM.sample(KEY, GMM_PARAMS, n)
    with pytest.raises(TypeError, match="key must be a PRNG key"):
        GMM.sample(None, GMM_PARAMS, 5)
    with pytest.raises(ValueError, match="params.weights must sum to 1"):
        GMM.sample(KEY, GMM_PARAMS._replace(weights=GMM_PARAMS.weights * 2), 5)
    x_int, _ = GMM.sample(3, GMM_PARAMS, 5)  # an int seed is jax.random.key(seed)
    np.testing.assert_array_equal(x_int, GMM.sample(jax.random.key(3), GMM_PARAMS, 5)[0])


def test_criteria_check_data_and_covariance_type():
    with pytest.raises(ValueError, match=FEATURES):
        emjax.bic(GMM, GMM_PARAMS, X[:, :1])
    full = GMM_PARAMS._replace(covariances=np.stack([np.eye(2, dtype=np.float32)] * 2))
    with pytest.raises(ValueError, match=r"covariance_type='diag'.*got \(2, 2, 2\).*shape of covariance_type='full'"):
        emjax.bic(GMM, full, X)
    with pytest.raises(ValueError, match="data contains 1 NaN"):
        emjax.aic(GMM, GMM_PARAMS, np.r_[X, [[np.nan, 0]]])
    # a list is taken; the value is -2 sum log p + p log n, recomputed from log_prob here
    expected = -2 * float(jnp.sum(GMM.log_prob(GMM_PARAMS, X))) + 9 * np.log(len(X))
    np.testing.assert_allclose(float(emjax.bic(GMM, GMM_PARAMS, X.tolist())), expected, rtol=1e-5)


def test_checks_run_once_on_the_host_and_never_inside_traces(monkeypatch):
    """The engine's own (traced) calls of log_prob cost no host-side check: bic validates the
    parameters once (its jitted sum calls log_prob again, traced); jit/vmap/grad of the public
    methods skip the checks."""
    calls = []
    original = emjax.GaussianMixture.validate_params
    monkeypatch.setattr(emjax.GaussianMixture, "validate_params",
                        lambda self, p, d: calls.append(1) or original(self, p, d))
    emjax.bic(GMM, GMM_PARAMS, X)
    assert len(calls) == 1
    eager = GMM.log_prob(GMM_PARAMS, X)
    assert len(calls) == 2
    np.testing.assert_allclose(jax.jit(lambda x: GMM.log_prob(GMM_PARAMS, x))(X), eager, rtol=1e-6)
    rows = jax.vmap(lambda row: GMM.log_prob(GMM_PARAMS, row[None])[0])(jnp.asarray(X))
    np.testing.assert_allclose(rows, eager, rtol=1e-6)
    grad = jax.grad(lambda x: jnp.sum(GMM.log_prob(GMM_PARAMS, x)))(jnp.asarray(X))
    assert np.isfinite(np.asarray(grad)).all()
    assert len(calls) == 2


PROBS = np.array([[0.2, 0.7], [0.6, 0.3]], np.float32)
TABLE = np.array([[[0.2, 0.3, 0.5], [0.5, 0.5, 0.0]], [[0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]], np.float32)


@pytest.mark.parametrize("model, params, data, bad, match", [
    (emjax.PoissonMixture(2), emjax.PoissonMixtureParams(HALVES, 3 * PROBS), RNG.poisson(3, (40, 2)),
     [[2.5, 1.0]], r"non-negative integer counts.*\(2.5\)"),
    (emjax.BernoulliMixture(2), emjax.BernoulliMixtureParams(HALVES, PROBS), RNG.random((40, 2)) < 0.4,
     [[2.0, 1.0]], r"binary values.*\(2.0\)"),
    (emjax.MultinomialMixture(2), emjax.MultinomialMixtureParams(HALVES, PROBS / PROBS.sum(1, keepdims=True)),
     RNG.poisson(3, (40, 2)), [[-1.0, 1.0]], "non-negative integer counts"),
    (emjax.CategoricalMixture(2, (3, 2)), emjax.CategoricalMixtureParams(HALVES, TABLE),
     np.c_[RNG.integers(3, size=40), RNG.integers(2, size=40)], [[3, 0]],
     r"out of range.*feature 0 allows -1 \(missing\) or 0..2"),
])
@pytest.mark.parametrize("method", ["log_prob", "posterior", "predict"])
def test_discrete_methods_refuse_bad_values_and_widths(model, params, data, bad, match, method):
    data = data.astype(np.float32)
    call = lambda x: getattr(model, method)(params, x)
    with pytest.raises(ValueError, match=match):
        call(np.array(bad, np.float32))  # F16: Poisson on 2.5 gave -3.58
    width = r"data must have at least one row and 2 columns" if isinstance(
        model, emjax.CategoricalMixture) else FEATURES
    with pytest.raises(ValueError, match=width):
        call(data[:, :1])
    np.testing.assert_array_equal(np.asarray(call(data[:3].tolist())), np.asarray(call(data[:3])))


HMM_X = RNG.normal(size=(2, 15, 2)).astype(np.float32)
HMM_PARAMS = emjax.HMMParams(HALVES, np.array([[0.9, 0.1], [0.2, 0.8]], np.float32),
                             emjax.GaussianEmissionParams(MEANS, GMM_PARAMS.covariances))


@pytest.mark.parametrize("method", ["log_prob", "posterior", "predict"])
def test_hmm_methods_check_the_sequences(method):
    model, params = emjax.GaussianHMM(2, covariance_type="diag"), HMM_PARAMS
    call = lambda data: getattr(model, method)(params, data)
    with pytest.raises(ValueError, match=FEATURES):
        call(HMM_X[..., :1])  # F16: silently broadcast
    bad = HMM_X.copy()
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*\(1, 3, 0\)"):
        call(bad)
    lengths = np.array([15, 10])
    tuple_result = call((HMM_X, lengths))
    np.testing.assert_array_equal(np.asarray(call([HMM_X, lengths])), np.asarray(tuple_result))
    with pytest.raises(ValueError, match=r"lengths must be <= n_steps=15"):
        call((HMM_X, np.array([16, 3])))
    bad[1, 12, 0] = np.nan  # padding past the length is ignored, as in fit
    bad[1, 3, 0] = 0.0
    call((bad, lengths))


def test_hmm_sample_and_discrete_hmm_checks():
    model, params = emjax.GaussianHMM(2, covariance_type="diag"), HMM_PARAMS
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        model.sample(KEY, params, 0)
    with pytest.raises(ValueError, match="n_sequences must be a positive integer"):
        model.sample(KEY, params, 4, n_sequences=1.5)
    with pytest.raises(ValueError, match="params.transitions: every row must sum to 1"):
        model.sample(KEY, params._replace(transitions=params.transitions * 2), 4)
    assert model.sample(KEY, params, 4, n_sequences=3)[0].shape == (3, 4, 2)
    poisson = emjax.PoissonHMM(2)
    counts = RNG.poisson(2, (2, 10, 2)).astype(np.float32)
    p = HMM_PARAMS._replace(emission=emjax.PoissonEmissionParams(3 * PROBS))
    with pytest.raises(ValueError, match=r"non-negative integer counts"):
        poisson.log_prob(p, counts + 0.5)


def test_bayesian_network_posterior_and_sample_check_their_inputs():
    model = emjax.BayesianNetwork({1: 0}, cardinalities=(2, 3))
    data = np.c_[RNG.integers(2, size=50), RNG.integers(3, size=50)]
    params = emjax.BNParams((HALVES, TABLE[0]))
    with pytest.raises(ValueError, match=r"data\[0, 1\] = 3 is outside the categories of variable 1"):
        model.posterior(params, np.array([[0, 3]]))
    with pytest.raises(ValueError, match=r"one column per variable \(2\)"):
        model.log_prob(params, data[:, :1])
    with pytest.raises(ValueError, match=r"params.tables\[1\]: every row must sum to 1"):
        model.log_prob(params._replace(tables=(params.tables[0], params.tables[1] * 2)), data)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        model.sample(KEY, params, 0)
    marginals = model.posterior(params, [[0, -1]])  # a list, a missing value
    np.testing.assert_allclose(marginals[1][0], params.tables[1][0], rtol=1e-6)


def test_plsa_transform_checks_its_inputs():
    counts = RNG.poisson(0.7, size=(20, 10))
    model = emjax.PLSA(3)
    params = emjax.PLSAParams(np.full((20, 3), 1 / 3, np.float32), np.full((3, 10), 0.1, np.float32))
    assert model.transform(params, counts[:2].tolist()).shape == (2, 3)
    with pytest.raises(ValueError, match=r"2 dimensions.*reshape\(1, -1\)"):
        model.transform(params, counts[0])
    with pytest.raises(ValueError, match="data has 5 words"):
        model.transform(params, counts[:2, :5])
    with pytest.raises(ValueError, match="n_iter must be a positive integer"):
        model.transform(params, counts[:2], n_iter=0)
    with pytest.raises(ValueError, match=r"params.topic_word must have shape \(n_topics=3"):
        model.transform(params._replace(topic_word=params.topic_word[:2]), counts[:2])
