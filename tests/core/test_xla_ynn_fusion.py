"""XLA CPU's YNNPACK fusions (issue "Trust", reproducer 1): jaxlib 0.10's CPU compiler fused a
transposed matrix product into the reduction that consumed it and returned wrong sums. The tied
fits it broke are checked against scikit-learn in tests/differential/test_tied_regression.py.
"""
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.linalg import solve_triangular

from emjax.core import xla_options

# the defect is in an optimisation pass: checked with XLA's optimisations on (tests/conftest.py)
pytestmark = pytest.mark.optimized


def _precision_cholesky(c):
    chol = jnp.linalg.cholesky(c)
    return solve_triangular(chol, jnp.eye(c.shape[-1], dtype=c.dtype), lower=True).T


def _fused_pattern(c, x, m):
    """The pattern XLA miscompiled: ``sum_d ((U^T x^T)[None] - (m U)[..., None])^2``."""
    u = _precision_cholesky(c)
    return jnp.sum(jnp.square((u.T @ x.T)[None] - (m @ u)[:, :, None]), axis=1)


def test_emjax_programs_compute_the_fused_pattern_exactly():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 30))
    c, x, m = a @ a.T / 30 + np.eye(30), rng.normal(size=(569, 30)), rng.normal(size=(2, 30))
    c, x, m = (np.float32(v) for v in (c, x, m))
    u = np.linalg.inv(np.linalg.cholesky(c.astype(float))).T
    expected = np.sum((((x @ u)[None] - (m @ u)[:, None, :])) ** 2, axis=-1)
    got = np.asarray(xla_options.jit(_fused_pattern)(c, x, m))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
