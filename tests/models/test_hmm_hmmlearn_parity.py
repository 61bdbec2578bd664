"""Parity with hmmlearn at float64 (GaussianHMM, CategoricalHMM, PoissonHMM with priors off):
same start, same data (several sequences via lengths) -> the same parameters and log-likelihood
after every Baum-Welch iteration (rtol 1e-8)."""
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import full_covariances

import emjax

hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")

K, D, N_ITER = 3, 2, 8
LENGTHS = np.array([40, 25, 33])


def corpus(seed=0):
    """Padded sequences from a sticky 3-regime Gaussian HMM (NumPy), and a start near it."""
    rng = np.random.default_rng(seed)
    trans = np.array([[0.85, 0.1, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    means = np.array([[0.0, 0.0], [2.5, 1.0], [-1.5, 2.5]])
    t = LENGTHS.max()
    x = np.zeros((len(LENGTHS), t, D))
    for s, length in enumerate(LENGTHS):
        z = [rng.integers(K)]
        for _ in range(length - 1):
            z.append(rng.choice(K, p=trans[z[-1]]))
        x[s, :length] = means[z] + rng.normal(size=(length, D)) * (0.6 + 0.2 * np.array(z))[:, None]
    start = dict(initial=np.array([0.4, 0.35, 0.25]), transitions=np.full((K, K), 1 / K),
                 means=means + rng.normal(scale=0.5, size=means.shape))
    return x, start


def covariances(covariance_type):
    full = np.stack([np.eye(D) * (0.5 + j) + 0.1 for j in range(K)])
    return {"full": full, "tied": full[0], "diag": np.stack([np.diagonal(c) for c in full]),
            "spherical": np.array([0.7, 1.0, 1.3])}[covariance_type]


@pytest.mark.parametrize("covariance_type", ["full"])  # the other types: the mixtures' parity tests
def test_gaussian_hmm_matches_hmmlearn(x64, covariance_type):
    x, start = corpus()
    cov0 = covariances(covariance_type)
    reference = hmmlearn_hmm.GaussianHMM(
        K, covariance_type=covariance_type, n_iter=1, init_params="", params="stmc",
        startprob_prior=1.0, transmat_prior=1.0, means_prior=0.0, means_weight=0.0,
        covars_prior=0.0, covars_weight=1.0, implementation="log")
    reference.startprob_, reference.transmat_ = start["initial"], start["transitions"]
    reference.means_, reference.covars_ = start["means"], cov0
    concatenated = np.concatenate([xs[:n] for xs, n in zip(x, LENGTHS)])
    trace = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(N_ITER):  # one iteration per fit, warm-started: the whole trace
            reference.fit(concatenated, LENGTHS)
            trace.append(reference.score(concatenated, LENGTHS))

    model = emjax.GaussianHMM(K, covariance_type=covariance_type, pseudo_count=0, reg_covar=0.0)
    params = emjax.HMMParams(jnp.asarray(start["initial"]), jnp.asarray(start["transitions"]),
                             emjax.GaussianEmissionParams(jnp.asarray(start["means"]), jnp.asarray(cov0)))
    result = emjax.em(model, params, (x, LENGTHS), max_iter=N_ITER, tol=0.0, throw=False)
    assert result.status == emjax.Status.MAX_ITER
    # emjax reports the mean per sequence; hmmlearn the total
    np.testing.assert_allclose(np.asarray(result.history) * len(LENGTHS), trace, rtol=1e-8)
    got = result.params
    np.testing.assert_allclose(got.initial, reference.startprob_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(got.transitions, reference.transmat_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(got.emission.means, reference.means_, rtol=1e-8)
    if covariance_type == "spherical":  # hmmlearn keeps spherical variances tiled to (k, d) after fit
        np.testing.assert_allclose(got.emission.covariances, np.asarray(reference._covars_).reshape(K, -1)[:, 0],
                                   rtol=1e-8)
    else:
        np.testing.assert_allclose(full_covariances(got.emission.covariances, covariance_type, K, D), reference.covars_,
                                   rtol=1e-8)
    np.testing.assert_array_equal(
        np.concatenate([p[:n] for p, n in zip(np.asarray(model.predict(got, (x, LENGTHS))), LENGTHS)]),
        reference.predict(concatenated, LENGTHS))


def discrete_corpus(family, seed=1):
    """Padded symbol or count sequences (NumPy) and start parameters for hmmlearn's
    CategoricalHMM / PoissonHMM."""
    rng = np.random.default_rng(seed)
    t = LENGTHS.max()
    if family == "categorical":
        x = rng.integers(0, 4, size=(len(LENGTHS), t, 1))
        emission = rng.dirichlet(np.ones(4), size=K)
    else:
        x = rng.poisson(rng.choice([0.5, 3.0, 8.0], size=(len(LENGTHS), t, 1)), size=(len(LENGTHS), t, 2))
        emission = rng.uniform(0.5, 8.0, size=(K, 2))
    x[1, LENGTHS[1]:] = 99  # padding: out of range on purpose, never read
    return x, np.array([0.5, 0.3, 0.2]), rng.dirichlet(np.ones(K) * 3, size=K), emission


@pytest.mark.parametrize("family", ["categorical", "poisson"])
def test_discrete_hmm_matches_hmmlearn(x64, family):
    x, initial, trans, emission = discrete_corpus(family)
    if family == "categorical":
        reference = hmmlearn_hmm.CategoricalHMM(K, n_features=4, n_iter=1, init_params="", params="ste")
        reference.emissionprob_ = emission
        model = emjax.CategoricalHMM(K, n_categories=(4,), pseudo_count=0)
        start = emjax.CategoricalEmissionParams(jnp.asarray(emission)[:, None, :])
    else:
        reference = hmmlearn_hmm.PoissonHMM(K, n_iter=1, init_params="", params="stl")
        reference.lambdas_ = emission
        model = emjax.PoissonHMM(K, pseudo_count=0)
        start = emjax.PoissonEmissionParams(jnp.asarray(emission))
    reference.startprob_, reference.transmat_ = initial, trans
    concatenated = np.concatenate([xs[:n] for xs, n in zip(x, LENGTHS)])
    trace = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(N_ITER):
            reference.fit(concatenated, LENGTHS)
            trace.append(reference.score(concatenated, LENGTHS))
    params = emjax.HMMParams(jnp.asarray(initial), jnp.asarray(trans), start)
    result = emjax.em(model, params, (x, LENGTHS), max_iter=N_ITER, tol=0.0, throw=False)
    np.testing.assert_allclose(np.asarray(result.history) * len(LENGTHS), trace, rtol=1e-8)
    got = result.params
    np.testing.assert_allclose(got.initial, reference.startprob_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(got.transitions, reference.transmat_, rtol=1e-8, atol=1e-12)
    if family == "categorical":
        np.testing.assert_allclose(got.emission.probs[:, 0], reference.emissionprob_, rtol=1e-8, atol=1e-12)
    else:
        np.testing.assert_allclose(got.emission.rates, reference.lambdas_, rtol=1e-8)
