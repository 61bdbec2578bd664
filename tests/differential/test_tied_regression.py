"""Issue 15, reproducer 1: covariance_type="tied" wrong after one ``em`` step on standardised
breast_cancer (569 x 30, pseudo_count=0, float64, k-means++ start). scikit-learn's own
E- and M-step from the same start is the reference; ``chunk_size=64`` gave the right answer."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

import emjax
from emjax.engine.driver import run_em
from emjax.engine.raw_rows import fit_coordinates

from . import paths as P
from . import references as ref

# the reproducers of an XLA optimisation defect (tests/core/test_xla_ynn_fusion.py): compiled as users do
pytestmark = [pytest.mark.usefixtures("x64"), pytest.mark.optimized]


def test_tied_breast_cancer_chunks():
    x = _breast_cancer()
    model = emjax.GaussianMixture(2, "tied", pseudo_count=0)
    start = P.first(emjax.init_restarts(model, x, jax.random.key(0), n_init=1))
    want, _ = ref.sklearn_gmm_step(P.tree64(start), x, "tied", model.reg_covar)
    for chunk in (None, 64, 569, 1000):
        params, objective, _ = P.em_step(model, start, x, chunk_size=chunk)
        _, recomputed = ref.sklearn_gmm_step(P.tree64(params), x, "tied", model.reg_covar)
        assert abs(objective - recomputed) <= 1e-9 * (1 + abs(recomputed)), (
            f"chunk_size={chunk}: history[0] {objective!r} != mean log_prob of the returned "
            f"params {recomputed!r}")
        P.assert_close(params, want, 1e-8, f"chunk_size={chunk}: params after one step")


def _breast_cancer():
    x = load_breast_cancer().data
    return (x - x.mean(0)) / x.std(0)


@pytest.mark.slow
def test_tied_loop_inside_a_callers_jit_matches_sklearn():
    """Inside a caller's ``jax.jit`` emjax's compiler options do not apply: the tied form itself
    must avoid the miscompiled fusion (docs/guide/numerics.md "Two XLA CPU defects")."""
    x = jnp.asarray(_breast_cancer())
    model = emjax.GaussianMixture(2, "tied", pseudo_count=0)
    start = P.first(emjax.init_restarts(model, x, jax.random.key(0), n_init=1))
    weights = jnp.ones(x.shape[0])

    @jax.jit
    def one_step(params, data, w):
        fit_model, rows, transform, _ = fit_coordinates(model, data, w, data.shape[0])
        result = run_em(fit_model, model.standardizer().params_to_standard(params, transform), rows, w,
                        max_iter=1, tol=0.0, chunk_size=data.shape[0])
        return model.standardizer().params_from_standard(result.params, transform)

    want, _ = ref.sklearn_gmm_step(P.tree64(start), np.asarray(x), "tied", model.reg_covar)
    P.assert_close(one_step(start, x, weights), want, 1e-8, "one tied step inside a caller's jit")


@pytest.mark.slow
def test_many_tied_restarts_never_decrease_and_the_winner_is_a_fixed_point():
    """MAP-EM (the default prior) never lowers its objective, so no restart is DECREASED.
    (scikit-learn's reg_covar, added after each M-step, is not a prior: that EM may fall by ~1e-9
    near its fixed point, which the driver honestly reports.) The sklearn-regularised winner is a
    fixed point of scikit-learn's step."""
    x = _breast_cancer()
    result = emjax.fit(emjax.GaussianMixture(2, "tied"), x, jax.random.key(0), n_init=16,
                       tol=1e-12, max_iter=500, throw=False)
    names = [emjax.Status(int(s)).name for s in result.restarts.status]
    assert set(names) == {"CONVERGED"}, names
    model = emjax.GaussianMixture(2, "tied", pseudo_count=0)
    result = emjax.fit(model, x, jax.random.key(0), n_init=16, tol=1e-10, max_iter=500, throw=False)
    step, _ = ref.sklearn_gmm_step(P.tree64(result.params), x, "tied", model.reg_covar)
    P.assert_close(result.params, step, 1e-5, "the winner after one more scikit-learn step")
