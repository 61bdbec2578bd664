"""One spelling of regularisation, ``pseudo_count`` (emjax/core/regularization.py), for the Gaussian
mixture and its scikit-learn shell.

The old ``regularization="prior"/"sklearn"`` warns and builds a model equal (and equally hashed, so
the same compiled programs) to its ``pseudo_count`` spelling; contradicting or bad values are
refused naming the argument. ``pseudo_count=0`` is checked against scikit-learn's GaussianMixture
and ``pseudo_count=0.5`` (a prior 500 times the default, visible in the numbers) against the
NumPy MAP-EM step of tests/differential/references.py, written from the model's docstring; both
at float64.
"""
import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import emjax
import emjax.sklearn
from differential import references as ref
from emjax.components import PSEUDO_COUNT
from reference.sklearn_gmm import make_data, make_init, precisions_of

COV_TYPES = ("full", "tied", "diag", "spherical")
OLD_AND_NEW = [("sklearn", 0.0), ("prior", PSEUDO_COUNT)]


def _leaves(tree):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(tree)]


# ------------------------------------------------------------------------ the engine model
@pytest.mark.parametrize("old, pseudo_count", OLD_AND_NEW)
def test_old_spelling_warns_and_builds_the_same_model(old, pseudo_count):
    with pytest.warns(DeprecationWarning, match=f"regularization='{old}'.*pseudo_count="):
        model = emjax.GaussianMixture(3, "diag", regularization=old)
    new = emjax.GaussianMixture(3, "diag", pseudo_count=pseudo_count)
    assert model == new and hash(model) == hash(new)
    assert model.pseudo_count == pseudo_count and model.regularization is None
    assert repr(model) == repr(new) and "regularization" not in repr(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a copy does not warn again
        assert dataclasses.replace(model, n_components=2) == dataclasses.replace(new, n_components=2)


def test_new_spelling_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert emjax.GaussianMixture(2, pseudo_count=0).has_prior is False
        assert emjax.GaussianMixture(2).has_prior is True
        assert emjax.GaussianMixture(2, pseudo_count=1).pseudo_count == 1.0  # stored as a float


@pytest.mark.parametrize("old, pseudo_count", OLD_AND_NEW)
def test_old_spelling_fits_bit_identically(old, pseudo_count):
    x = make_data(seed=7, n=60, d=2).astype(np.float32)
    with pytest.warns(DeprecationWarning):
        old_model = emjax.GaussianMixture(2, "full", regularization=old)
    new_model = emjax.GaussianMixture(2, "full", pseudo_count=pseudo_count)
    key = jax.random.key(3)
    got = emjax.fit(old_model, x, key, n_init=2, max_iter=10)
    want = emjax.fit(new_model, x, key, n_init=2, max_iter=10)
    for a, b in zip(_leaves((got.params, got.objective, got.restarts.objective)),
                    _leaves((want.params, want.objective, want.restarts.objective))):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("old, pseudo_count", [("sklearn", 0.5), ("prior", 0)])
def test_contradicting_spellings_are_refused_naming_both(old, pseudo_count):
    with pytest.raises(ValueError, match=rf"regularization='{old}' and pseudo_count={pseudo_count}"):
        emjax.GaussianMixture(2, regularization=old, pseudo_count=pseudo_count)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "0.1", True, None])
def test_bad_pseudo_count_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="pseudo_count must be a finite number >= 0"):
        emjax.GaussianMixture(2, pseudo_count=bad)


def test_unknown_old_value_is_refused():
    with pytest.raises(ValueError, match=r"regularization must be one of \('prior', 'sklearn'\)"):
        emjax.GaussianMixture(2, regularization="none")


# ------------------------------------------------------------------------ the numbers (float64)
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_pseudo_count_zero_is_sklearn(x64, cov_type):
    x = make_data(seed=11, n=90, d=2)
    w0, m0, cov0 = init = make_init(x, cov_type, k=2, seed=12)
    model = emjax.GaussianMixture(2, cov_type, pseudo_count=0)
    got = emjax.em(model, emjax.GMMParams(*map(jnp.asarray, init)), x, max_iter=4, tol=0.0, throw=False)
    sk = SkGaussianMixture(2, covariance_type=cov_type, max_iter=4, tol=0.0, weights_init=w0,
                           means_init=m0, precisions_init=precisions_of(cov0, cov_type))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk.fit(x)
    for name, value in zip(("weights", "means", "covariances"), got.params):
        np.testing.assert_allclose(np.asarray(value), getattr(sk, name + "_"), rtol=1e-8, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_positive_pseudo_count_is_the_map_step(x64, cov_type):
    x = make_data(seed=13, n=40, d=2)
    init = make_init(x, cov_type, k=2, seed=14)
    model = emjax.GaussianMixture(2, cov_type, pseudo_count=0.5, collapse_guard=False)
    got = emjax.em(model, emjax.GMMParams(*map(jnp.asarray, init)), x, max_iter=1, tol=0.0, throw=False)
    want, _ = ref.gmm_step(init, x, cov_type, model.reg_covar, pseudo_count=0.5)
    for name, a, b in zip(("weights", "means", "covariances"), got.params, want):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-9, atol=1e-12, err_msg=name)
    # the reported objective (log-likelihood + log prior, per row) is the reference's at the result
    _, objective = ref.gmm_step(want, x, cov_type, model.reg_covar, pseudo_count=0.5)
    np.testing.assert_allclose(float(got.objective), objective, rtol=1e-9)
    # the prior is visible at this strength: the default's step differs
    default, _ = ref.gmm_step(init, x, cov_type, model.reg_covar)
    assert not np.allclose(np.asarray(got.params.weights), default[0], rtol=1e-6)


# ------------------------------------------------------------------------ the scikit-learn shell
def test_shell_keeps_arguments_verbatim_and_warns_at_fit():
    est = emjax.sklearn.GaussianMixture(2, regularization="prior", random_state=0)
    params = est.get_params()
    assert params["regularization"] == "prior" and params["pseudo_count"] == 0.0
    assert clone(est).get_params() == params
    assert emjax.sklearn.GaussianMixture().get_params()["regularization"] is None
    x = make_data(seed=15, n=50, d=2).astype(np.float32)
    with pytest.warns(DeprecationWarning, match="pseudo_count=0.001"):
        old = est.fit(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        new = emjax.sklearn.GaussianMixture(2, pseudo_count=PSEUDO_COUNT, random_state=0).fit(x)
        assert old._engine_model(2) == new._engine_model(2)
        for name in ("weights_", "means_", "covariances_", "lower_bound_"):
            assert np.asarray(getattr(old, name)).tobytes() == np.asarray(getattr(new, name)).tobytes()


def test_shell_refuses_contradictions_and_bad_values_at_fit():
    x = make_data(seed=15, n=50, d=2)
    with pytest.raises(ValueError, match="regularization='sklearn' and pseudo_count=0.5"):
        emjax.sklearn.GaussianMixture(2, regularization="sklearn", pseudo_count=0.5).fit(x)
    with pytest.raises(ValueError, match="pseudo_count must be a finite number >= 0"):
        emjax.sklearn.GaussianMixture(2, pseudo_count=-0.1).fit(x)
