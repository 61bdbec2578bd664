"""emjax.sklearn.hmm against hmmlearn 0.3 at float64, from the same parameters, on three
sequences of uneven lengths: score, decode (Viterbi states and log-probability), predict_proba
and one Baum-Welch step (n_iter=1, hmmlearn's default priors: covars_prior=1e-2 for Gaussian
emissions) for GaussianHMM (all four covariance types), CategoricalHMM and PoissonHMM; then the
estimator's behaviour (fixed parts, refusals, clone, sample)."""
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from emjax.sklearn.hmm import CategoricalHMM, GaussianHMM, PoissonHMM

hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")

K = 3
LENGTHS = np.array([40, 25, 33])


def start(rng):
    return np.array([0.5, 0.3, 0.2]), rng.dirichlet(np.ones(K) * 3, size=K)


def gaussian_case(covariance_type, rng):
    n = LENGTHS.sum()
    X = rng.normal(size=(n, 2)) + np.repeat(np.array([[0, 0], [3, 1], [-2, 3]]), [30, 40, 28], axis=0)
    means = np.array([[0.2, 0.1], [2.5, 1.2], [-1.5, 2.5]])
    full = np.stack([np.eye(2) * (0.5 + j) + 0.2 for j in range(K)])
    covars = {"full": full, "tied": full[0], "diag": np.stack([np.diag(c) for c in full]),
              "spherical": np.array([0.7, 1.0, 1.3])}[covariance_type]
    return X, dict(means_=means, covars_=covars)


CASES = [("gaussian", t) for t in ("full", "tied", "diag", "spherical")] + [("categorical", None),
                                                                           ("poisson", None)]


def pair(family, covariance_type, rng, **options):
    """(X, hmmlearn model, emjax model) holding the same parameters."""
    initial, trans = start(rng)
    n = LENGTHS.sum()
    if family == "gaussian":
        X, emission = gaussian_case(covariance_type, rng)
        ref = hmmlearn_hmm.GaussianHMM(K, covariance_type=covariance_type, init_params="", **options)
        ours = GaussianHMM(K, covariance_type=covariance_type, init_params="", **options)
    elif family == "categorical":
        X = rng.integers(0, 4, size=(n, 1))
        emission = dict(emissionprob_=rng.dirichlet(np.ones(4), size=K))
        ref = hmmlearn_hmm.CategoricalHMM(K, n_features=4, init_params="", **options)
        ours = CategoricalHMM(K, n_features=4, init_params="", **options)
    else:
        X = rng.poisson(rng.choice([0.5, 3.0, 8.0], size=(n, 1)), size=(n, 2))
        emission = dict(lambdas_=rng.uniform(0.5, 8.0, size=(K, 2)))
        ref = hmmlearn_hmm.PoissonHMM(K, init_params="", **options)
        ours = PoissonHMM(K, init_params="", **options)
    for model in (ref, ours):
        model.startprob_, model.transmat_ = initial, trans
        for name, value in emission.items():
            setattr(model, name, value)
    return X, ref, ours


def emission_of(model, family):
    if family == "categorical":
        return [model.emissionprob_]
    if family == "poisson":
        return [model.lambdas_]
    return [model.means_, model.covars_]


@pytest.mark.slow
@pytest.mark.parametrize("family, covariance_type", CASES)
def test_inference_matches_hmmlearn(x64, family, covariance_type):
    X, ref, ours = pair(family, covariance_type, np.random.default_rng(0))
    assert ours.score(X, LENGTHS) == pytest.approx(ref.score(X, LENGTHS), rel=1e-10)
    ref_lp, ref_states = ref.decode(X, LENGTHS)
    lp, states = ours.decode(X, LENGTHS)
    np.testing.assert_array_equal(states, ref_states)
    assert lp == pytest.approx(ref_lp, rel=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X, LENGTHS), ref.predict_proba(X, LENGTHS), atol=1e-10)
    logprob, posteriors = ours.score_samples(X, LENGTHS)
    assert logprob == pytest.approx(ref.score_samples(X, LENGTHS)[0], rel=1e-10)
    assert posteriors.shape == (LENGTHS.sum(), K)
    np.testing.assert_array_equal(ours.predict(X, LENGTHS), ref.predict(X, LENGTHS))


@pytest.mark.parametrize("family, covariance_type", CASES)
def test_one_baum_welch_step_matches_hmmlearn(x64, family, covariance_type):
    X, ref, ours = pair(family, covariance_type, np.random.default_rng(1), n_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, LENGTHS)
    ours.fit(X, LENGTHS)
    np.testing.assert_allclose(ours.startprob_, ref.startprob_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.transmat_, ref.transmat_, rtol=1e-9, atol=1e-12)
    ref_emission = emission_of(ref, family)
    if covariance_type == "spherical":  # hmmlearn keeps fitted spherical variances tiled (k, d)
        ref_emission[1] = np.asarray(ref._covars_)[:, :1, None] * np.eye(2)
    for got, want in zip(emission_of(ours, family), ref_emission):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert ours.monitor_.iter == 1 and ours.monitor_.status == "MAX_ITER"
    # emjax's history is the objective after the step: hmmlearn's score of the new parameters
    # (plus the covariance prior's log prior for Gaussian emissions, small here)
    assert ours.monitor_.history[0] == pytest.approx(ref.score(X, LENGTHS), rel=1e-3)


@pytest.mark.slow
def test_fit_from_random_start_never_lowers_the_objective_and_keeps_fixed_parts(x64):
    X, _, ours = pair("gaussian", "diag", np.random.default_rng(2))
    ours.set_params(init_params="mc", params="mc", n_iter=20, tol=0, random_state=0)
    fixed_start, fixed_trans = ours.startprob_.copy(), ours.transmat_.copy()
    ours.fit(X, LENGTHS)
    np.testing.assert_array_equal(ours.startprob_, fixed_start)
    np.testing.assert_array_equal(ours.transmat_, fixed_trans)
    history = np.asarray(ours.monitor_.history)
    assert len(history) == 20 and np.all(np.diff(history) > -1e-8 * np.abs(history[1:]))


@pytest.mark.slow
def test_restarts_and_sample(x64):
    X, _, _ = pair("poisson", None, np.random.default_rng(3))
    model = PoissonHMM(2, n_init=3, random_state=0, n_iter=30).fit(X, LENGTHS)
    assert len(model.restart_statuses_) == 3 and model.lambdas_.shape == (2, 2)
    x, states = model.sample(50, random_state=1)
    assert x.shape == (50, 2) and states.shape == (50,) and set(states) <= {0, 1}
    np.testing.assert_array_equal(model.sample(50, random_state=1)[0], x)


def test_clone_and_refusals():
    model = GaussianHMM(2, covariance_type="full", n_iter=5)
    assert clone(model).get_params() == model.get_params()
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(NotFittedError, match="startprob_"):
        model.score(X)
    for options, match in [(dict(params="stm"), "params must contain all of 'cm'"),
                           (dict(startprob_prior=2.0), "startprob_prior must be 1.0"),
                           (dict(means_weight=1.0), "means_weight must be 0"),
                           (dict(implementation="fast"), "implementation must be one of")]:
        with pytest.raises(ValueError, match=match):
            clone(model).set_params(**options).fit(X)
    with pytest.raises(ValueError, match="lengths must be >= 1 and sum to the number of samples"):
        clone(model).fit(X, [5, 10])
    with pytest.raises(ValueError, match="integer symbols"):
        CategoricalHMM(2).fit(X)
