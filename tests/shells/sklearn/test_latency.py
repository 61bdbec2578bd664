"""What keeps emjax.sklearn's mixtures from compiling again, and their live ``verbose``.

References: scipy's Gaussian densities (the host-side scoring), the engine's own ``log_prob`` and
``posterior`` on unpadded rows (padded held-out rows with NaN), JAX's backend-compile event (no
timing), a fit without ``verbose``.
"""
import contextlib
import io
from contextlib import redirect_stderr, redirect_stdout

import jax
import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SkGMM
from sklearn.model_selection import GridSearchCV, KFold

from emjax.sklearn import GaussianMixture
from emjax.core.xla_options import BACKEND_COMPILE_EVENT
from helpers import full_covariances
from reference.sklearn_gmm import make_data


COV_TYPES = ("full", "tied", "diag", "spherical")


@contextlib.contextmanager
def counting_compiles():
    """A list that collects one entry per XLA compilation inside the block."""
    compiled = []

    def listen(event, duration, **kwargs):
        if event == BACKEND_COMPILE_EVENT:
            compiled.append(kwargs)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield compiled
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def test_folds_of_a_grid_search_share_programs_and_scoring_compiles_nothing():
    """The folds of a 5-fold CV (train 142/143 rows, test 35/36) and the refit on all rows use
    one fit program per n_components; score/predict/predict_proba of any row count compile
    nothing."""
    x = make_data(n=178, seed=3)
    folds = list(KFold(5, shuffle=True, random_state=0).split(x))
    train, test = folds[0]
    gm = GaussianMixture(2, random_state=0).fit(x[train])  # compiles this K's program
    with counting_compiles() as compiled:
        gm.score(x[test]), gm.predict(x[:7]), gm.predict_proba(x[:100]), gm.score_samples(x)
        for train, test in folds[1:]:
            gm.fit(x[train]).score(x[test])
        GridSearchCV(GaussianMixture(random_state=0), {"n_components": [2]}, cv=folds).fit(x)
    assert compiled == []


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_host_densities_equal_scipys(cov_type):
    """score_samples/predict_proba/predict (NumPy on the host) against scipy's Gaussian log
    densities at scikit-learn's fitted parameters (max_iter=0 keeps them: nothing is compiled)."""
    x = make_data(n=200, seed=7)
    sk = SkGMM(3, covariance_type=cov_type, random_state=0, max_iter=30).fit(x)
    weights, means, cov = sk.weights_, sk.means_, sk.covariances_
    gm = GaussianMixture(3, covariance_type=cov_type, max_iter=0, weights_init=weights,
                         means_init=means, precisions_init=sk.precisions_).fit(x)
    new = make_data(n=37, seed=8) + np.random.default_rng(9).normal(scale=0.5, size=(37, 3))
    full = full_covariances(cov, cov_type, 3, 3)
    log_rho = np.stack([np.log(w) + multivariate_normal(m, c).logpdf(new)
                        for w, m, c in zip(weights, means, full)], axis=1)
    np.testing.assert_allclose(gm.score_samples(new), logsumexp(log_rho, axis=1), rtol=1e-10)
    resp = softmax(log_rho, axis=1)
    assert ((resp > 0.01) & (resp < 0.99)).any()  # not trivially one-hot
    np.testing.assert_allclose(gm.predict_proba(new), resp, rtol=1e-8, atol=1e-13)
    np.testing.assert_array_equal(gm.predict(new), resp.argmax(axis=1))
    assert gm.score(new.astype(np.float32)) == pytest.approx(gm.score(new), rel=1e-5)


@pytest.mark.slow
def test_held_out_rows_with_nan_padded_in_the_engine_equal_unpadded(x64):
    """missing="marginalize": rows with NaN are scored by the engine, padded to the fit's bucket
    with rows that are cut off; the values equal the engine's on the rows alone."""
    x = make_data(n=120, seed=7)
    gm = GaussianMixture(3, random_state=0, missing="marginalize", max_iter=20).fit(x)
    held_out = make_data(n=23, seed=8)
    held_out[::3, 1] = np.nan
    model, params = gm._engine_model(3), gm._engine_params()
    np.testing.assert_allclose(gm.score_samples(held_out), model.log_prob(params, held_out), rtol=1e-12)
    np.testing.assert_allclose(gm.predict_proba(held_out), model.posterior(params, held_out),
                               rtol=1e-10, atol=1e-15)


@pytest.mark.slow
def test_verbose_shows_the_fit_while_it_runs_and_changes_nothing():
    x = make_data(n=150, seed=9)
    quiet = GaussianMixture(2, random_state=0, n_init=2).fit(x)
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        loud = GaussianMixture(2, random_state=0, n_init=2, verbose=1).fit(x)
    # iteration lines come from emjax.engine.progress.FitProgress, fed by the loop's host callback
    assert "compiling... done" in err.getvalue() and "best objective" in err.getvalue()
    assert "Initialization 1:" in out.getvalue()
    np.testing.assert_array_equal(loud.means_, quiet.means_)
    assert loud.restart_statuses_ == quiet.restart_statuses_


@pytest.mark.slow
def test_hmm_verbose_shows_the_fit_while_it_runs_and_changes_nothing():
    from emjax.sklearn import GaussianHMM

    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 2)) + np.repeat(np.array([[0.0, 0.0], [4.0, 1.0]]), 45, axis=0)
    quiet = GaussianHMM(2, "diag", n_iter=15, random_state=0).fit(x, [50, 40])
    err = io.StringIO()
    with redirect_stderr(err):
        loud = GaussianHMM(2, "diag", n_iter=15, random_state=0, verbose=True).fit(x, [50, 40])
    assert "compiling... done" in err.getvalue() and "best objective" in err.getvalue()
    np.testing.assert_array_equal(loud.means_, quiet.means_)
    np.testing.assert_array_equal(loud.transmat_, quiet.transmat_)
