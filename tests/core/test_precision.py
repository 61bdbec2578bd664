"""Matrix products that feed likelihoods ask for full float32 precision (no TF32 on GPUs)."""
import jax
import jax.numpy as jnp
import pytest

import emjax
from emjax import GMMParams


def dot_precisions(jaxpr):
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append(eqn.params["precision"])
        for value in eqn.params.values():  # nested jaxprs (pjit, custom calls)
            inner = getattr(value, "jaxpr", value)
            if hasattr(inner, "eqns"):
                found += dot_precisions(inner)
    return found


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_e_step_products_use_highest_precision(cov):
    model = emjax.GaussianMixture(3, covariance_type=cov)
    x = jnp.ones((50, 5))
    cov_shape = {"full": (3, 5, 5), "tied": (5, 5), "diag": (3, 5), "spherical": (3,)}[cov]
    cov_value = jnp.broadcast_to(jnp.eye(5), cov_shape) if cov in ("full", "tied") else jnp.ones(cov_shape)
    params = GMMParams(jnp.full(3, 1 / 3), jnp.zeros((3, 5)), cov_value)
    jaxpr = jax.make_jaxpr(model.e_step)(params, x, jnp.ones(50)).jaxpr
    precisions = dot_precisions(jaxpr)
    assert len(precisions) >= 2, "the E-step has matrix products"
    highest = jax.lax.Precision.HIGHEST
    assert all(p is not None and all(q == highest for q in p) for p in precisions), precisions
