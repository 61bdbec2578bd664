"""Issue 15, reproducer 1: covariance_type="tied" wrong after one ``em`` step on standardised
breast_cancer (569 x 30, regularization="sklearn", float64, k-means++ start). scikit-learn's own
E- and M-step from the same start is the reference; ``chunk_size=64`` gave the right answer."""
import jax
import pytest
from sklearn.datasets import load_breast_cancer

import emjax

from . import paths as P
from . import references as ref

pytestmark = pytest.mark.usefixtures("x64")


def test_tied_breast_cancer_chunks():
    x = load_breast_cancer().data
    x = (x - x.mean(0)) / x.std(0)
    model = emjax.GaussianMixture(2, "tied", regularization="sklearn")
    start = P.first(emjax.init_restarts(model, x, jax.random.key(0), n_init=1))
    want, _ = ref.sklearn_gmm_step(P.tree64(start), x, "tied", model.reg_covar)
    for chunk in (None, 64):
        params, objective, _ = P.em_step(model, start, x, chunk_size=chunk)
        _, recomputed = ref.sklearn_gmm_step(P.tree64(params), x, "tied", model.reg_covar)
        assert abs(objective - recomputed) <= 1e-9 * (1 + abs(recomputed)), (
            f"chunk_size={chunk}: history[0] {objective!r} != mean log_prob of the returned "
            f"params {recomputed!r}")
        P.assert_close(params, want, 1e-8, f"chunk_size={chunk}: params after one step")
