"""emjax.sklearn's mixtures against scikit-learn's at float64, and in scikit-learn's tools.

Parity runs both from the same starting parameters (GaussianMixture: weights_init, means_init,
precisions_init; BayesianGaussianMixture: emjax's start copied into scikit-learn's fitted
attributes, then ``warm_start``) for a fixed number of EM steps (``tol=0``), so the references are
scikit-learn's own iterates, not converged points that any EM would share.
"""
import warnings

import jax
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBGMM
from sklearn.mixture import GaussianMixture as SkGMM
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import emjax
from emjax.sklearn import BayesianGaussianMixture, ConvergenceWarning, GaussianMixture
from reference.sklearn_gmm import make_data, make_init, precisions_of


COV_TYPES = ("full", "tied", "diag", "spherical")
N_ITER = 12
RTOL = 1e-6


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    """scikit-learn's small triangular solves are ~1000x slower with multi-threaded OpenBLAS on
    small machines (speed only)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def make_start(x, cov_type, k=3, seed=1):
    """Poor but valid starting parameters as scikit-learn's ``*_init`` arguments."""
    weights, means, cov = make_init(x, cov_type, k=k, seed=seed)
    return dict(weights_init=weights, means_init=means, precisions_init=precisions_of(cov, cov_type))


def quietly(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        return fit()


FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def assert_fitted_match(ours, theirs, names=FITTED):
    """Parameters equal to RTOL; precisions (inverses, ill-conditioned for a tight component) to
    RTOL relative to their largest entry."""
    for name in names:
        mine, ref = np.asarray(getattr(ours, name)), np.asarray(getattr(theirs, name))
        atol = RTOL * np.abs(ref).max() if name.startswith("precisions") else 1e-10
        np.testing.assert_allclose(mine, ref, rtol=RTOL, atol=atol, err_msg=name)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_fit_matches_sklearn_from_the_same_start(cov_type, capsys):
    x = make_data()
    start = make_start(x, cov_type)
    ours = GaussianMixture(3, covariance_type=cov_type, max_iter=N_ITER, tol=0.0, verbose=2,
                           verbose_interval=5, **start)
    with pytest.warns(SkConvergenceWarning):  # tol=0 never converges; the warning is sklearn's too
        ours.fit(x)
    printed = capsys.readouterr().out
    assert f"Initialization 0: MAX_ITER after {N_ITER} iteration(s)" in printed
    assert "  Iteration 10\t lower bound" in printed
    theirs = quietly(lambda: SkGMM(3, covariance_type=cov_type, max_iter=N_ITER, tol=0.0, **start).fit(x))
    # EM is still moving: one step fewer gives other parameters than the reference
    fewer = quietly(lambda: SkGMM(3, covariance_type=cov_type, max_iter=N_ITER - 1, tol=0.0, **start).fit(x))
    assert not np.allclose(fewer.means_, theirs.means_, rtol=1e-4)
    assert_fitted_match(ours, theirs)
    assert ours.means_.dtype == np.float64 and ours.n_iter_ == theirs.n_iter_ == N_ITER
    assert not ours.converged_ and ours.restart_statuses_ == [emjax.Status.MAX_ITER]
    # lower_bound_ is the mean log-likelihood of the returned parameters; scikit-learn's is that
    # of the parameters one step before, which is our lower_bounds_[-2]
    np.testing.assert_allclose(ours.lower_bound_, theirs.score(x), rtol=RTOL)
    np.testing.assert_allclose(ours.lower_bounds_[-2], theirs.lower_bound_, rtol=RTOL)
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_methods_match_sklearn_at_given_parameters(cov_type):
    x = make_data(seed=7, n=200)
    x_new = make_data(seed=8, n=60) + np.random.default_rng(9).normal(scale=0.5, size=(60, 3))
    sk = quietly(lambda: SkGMM(3, covariance_type=cov_type, random_state=0, max_iter=30).fit(x))
    ours = GaussianMixture(3, covariance_type=cov_type, max_iter=0, weights_init=sk.weights_,
                           means_init=sk.means_, precisions_init=sk.precisions_).fit(x)
    for data in (x, x_new):
        np.testing.assert_allclose(ours.score_samples(data), sk.score_samples(data), rtol=1e-9)
        resp = sk.predict_proba(data)
        assert ((resp > 0.05) & (resp < 0.95)).any()  # not trivially one-hot
        np.testing.assert_allclose(ours.predict_proba(data), resp, rtol=1e-7, atol=1e-12)
        np.testing.assert_array_equal(ours.predict(data), sk.predict(data))
        np.testing.assert_allclose(ours.score(data), sk.score(data), rtol=1e-10)
        np.testing.assert_allclose(ours.bic(data), sk.bic(data), rtol=1e-10)
        np.testing.assert_allclose(ours.aic(data), sk.aic(data), rtol=1e-10)


def test_integer_sample_weights_equal_repeated_rows():
    x = make_data(seed=2)
    counts = np.random.default_rng(3).integers(0, 4, size=len(x))
    start = make_start(x, "full", seed=4)
    settings = dict(covariance_type="full", max_iter=N_ITER, tol=0.0, **start)
    weighted = quietly(lambda: GaussianMixture(3, **settings).fit(x, sample_weight=counts))
    repeated = quietly(lambda: SkGMM(3, **settings).fit(np.repeat(x, counts, axis=0)))
    assert_fitted_match(weighted, repeated)


def copy_start_into_sklearn(ours, sk, x):
    """scikit-learn's BayesianGaussianMixture set to emjax's fitted state, ready to warm-start."""
    for name in ("weight_concentration_", "mean_precision_", "means_", "degrees_of_freedom_",
                 "covariances_", "precisions_cholesky_"):
        setattr(sk, name, getattr(ours, name))
    sk.converged_, sk.lower_bound_ = False, -np.inf
    return sk


@pytest.mark.slow
@pytest.mark.parametrize("cov_type,prior_type", [("full", "dirichlet_process"),
                                                 ("tied", "dirichlet_distribution"),
                                                 ("diag", "dirichlet_process"),
                                                 ("spherical", "dirichlet_distribution")])
def test_bayesian_fit_matches_sklearn_from_the_same_start(cov_type, prior_type):
    x = make_data(seed=11, n=120)
    settings = dict(n_components=4, covariance_type=cov_type, weight_concentration_prior_type=prior_type,
                    random_state=0)
    ours = BayesianGaussianMixture(**settings, max_iter=0).fit(x)  # emjax's start
    sk = copy_start_into_sklearn(ours, SkBGMM(**settings, reg_covar=0.0, warm_start=True,
                                              max_iter=N_ITER, tol=0.0), x)
    quietly(lambda: sk.fit(x))
    ours.set_params(warm_start=True, max_iter=N_ITER, tol=0.0)
    quietly(lambda: ours.fit(x))
    assert ours.n_iter_ == sk.n_iter_ == N_ITER
    assert_fitted_match(ours, sk, ("weights_", "mean_precision_", "means_", "degrees_of_freedom_",
                                   "covariances_", "precisions_cholesky_", "mean_prior_",
                                   "covariance_prior_"))
    np.testing.assert_allclose(np.asarray(ours.weight_concentration_),
                               np.asarray(sk.weight_concentration_), rtol=RTOL)
    for name in ("weight_concentration_prior_", "mean_precision_prior_", "degrees_of_freedom_prior_"):
        assert getattr(ours, name) == pytest.approx(getattr(sk, name), rel=1e-12), name
    np.testing.assert_allclose(ours.score_samples(x), sk.score_samples(x), rtol=1e-8)
    np.testing.assert_allclose(ours.predict_proba(x), sk.predict_proba(x), rtol=1e-6, atol=1e-12)


def test_bayesian_reg_covar_is_refused_by_name():
    with pytest.raises(ValueError, match="reg_covar must be 0"):
        BayesianGaussianMixture(reg_covar=1e-6).fit(make_data())


def blobs(n=150, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    return np.array([[0, 0], [6, 0], [0, 6]])[labels] + rng.normal(size=(n, 2)) + 100, labels


@pytest.mark.slow
def test_pipeline_clone_and_grid_search():
    x, labels = blobs()
    pipe = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(x)
    direct = GaussianMixture(3, random_state=0).fit(StandardScaler().fit_transform(x))
    np.testing.assert_array_equal(pipe.predict(x), direct.predict(StandardScaler().fit_transform(x)))
    from sklearn.metrics import adjusted_rand_score
    assert adjusted_rand_score(labels, pipe.predict(x)) > 0.95  # well separated blobs are found

    copy = clone(pipe[-1])
    assert copy.get_params() == pipe[-1].get_params() and not hasattr(copy, "means_")

    search = GridSearchCV(GaussianMixture(random_state=0), {"n_components": [1, 3]}, cv=3).fit(x)
    assert search.best_params_ == {"n_components": 3}
    assert search.best_estimator_.means_.shape == (3, 2)


def test_random_state_forms():
    x, _ = blobs(seed=1)
    fit = lambda rs: GaussianMixture(3, init_params="random", random_state=rs).fit(x).means_
    np.testing.assert_array_equal(fit(5), fit(5))
    np.testing.assert_array_equal(fit(jax.random.key(5)), fit(5))  # an int is jax.random.key(int)
    fit(np.random.RandomState(0))
    fit(None)
    with pytest.raises(TypeError, match="random_state"):
        fit("seed")


@pytest.mark.slow
def test_float32_stays_float32_and_x64_is_restored():
    x, _ = blobs(seed=2)
    before = jax.config.jax_enable_x64
    gm = GaussianMixture(3, random_state=0).fit(x.astype(np.float32))
    assert gm.means_.dtype == np.float32 and gm.sample(4)[0].shape == (4, 2)
    assert GaussianMixture(3, random_state=0).fit(x).means_.dtype == np.float64
    assert jax.config.jax_enable_x64 == before


def test_warning_is_both_sklearns_and_emjaxs():
    assert issubclass(ConvergenceWarning, SkConvergenceWarning)
    assert issubclass(ConvergenceWarning, emjax.ConvergenceWarning)


@pytest.mark.slow
def test_missing_values_are_marginalized():
    x, _ = blobs(seed=3)
    holes = x.copy()
    holes[::7, 0] = np.nan
    gm = GaussianMixture(3, random_state=0, missing="marginalize").fit(holes)
    assert gm.__sklearn_tags__().input_tags.allow_nan
    complete = GaussianMixture(3, random_state=0).fit(x)
    # the blobs are found with or without the holes, and rows with a hole get finite densities
    np.testing.assert_allclose(np.sort(gm.means_[:, 1]), np.sort(complete.means_[:, 1]), atol=0.3)
    assert np.isfinite(gm.score_samples(holes)).all() and gm.predict(holes[:7]).shape == (7,)
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(3).fit(holes)
