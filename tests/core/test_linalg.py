"""emjax.core.linalg (Cholesky and triangular solves without LAPACK calls) against NumPy at float64,
and the hang it removes (F3 of ../shared/findings/reliability.md) as a soak of short fits."""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emjax.core import linalg


def _spd(rng, batch, d):
    a = rng.normal(size=batch + (d, d))
    return a @ np.swapaxes(a, -1, -2) / d + 0.1 * np.eye(d)


pytestmark = pytest.mark.usefixtures("x64")


@pytest.mark.parametrize("d", [1, 2, 4, 5, 40])
@pytest.mark.parametrize("batch", [(), (3,), (2, 4)])
def test_cholesky_and_solves_match_numpy(d, batch):
    rng = np.random.default_rng(d)
    a = _spd(rng, batch, d)
    b = rng.normal(size=batch + (d, 3))
    chol = np.asarray(jax.jit(linalg.cholesky)(a))
    np.testing.assert_allclose(chol, np.linalg.cholesky(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(linalg.solve_lower(chol, b)), np.linalg.solve(chol, b),
                               rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(np.asarray(linalg.solve_lower_transposed(chol, b)),
                               np.linalg.solve(np.swapaxes(chol, -1, -2), b), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(np.asarray(linalg.cho_solve(chol, b)), np.linalg.solve(a, b),
                               rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.asarray(linalg.triangular_inverse(chol)), np.linalg.inv(chol),
                               rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("d", [2, 6])
def test_not_positive_definite_gives_nan(d):
    a = np.eye(d)
    a[-1, -1] = -1.0
    assert np.isnan(np.asarray(linalg.cholesky(a))[-1, -1])


def test_gradients_match_lapack():
    a = _spd(np.random.default_rng(0), (), 6)
    f = lambda m, chol: jnp.sum(jnp.sin(chol(m)))
    ours = jax.grad(f)(a, linalg.cholesky)
    lapack = jax.grad(f)(a, jnp.linalg.cholesky)
    np.testing.assert_allclose(np.asarray(ours + ours.T), np.asarray(lapack + lapack.T), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("d", [2, 4, 20])
def test_programs_hold_no_lapack_call(d):
    """Small matrices too: many restarts batch them past LAPACK's splitting threshold."""
    import emjax
    x = np.random.default_rng(0).normal(size=(50, d))
    model = emjax.GaussianMixture(3, "full")
    text = jax.jit(lambda d: emjax.fit(model, d, jax.random.key(0), n_init=2, max_iter=3,
                                       throw=False).objective).lower(x).as_text()
    assert "lapack" not in text and "potrf" not in text and "trsm" not in text


SOAK = textwrap.dedent("""
    import jax, numpy as np, emjax
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0); rng.normal(size=(100, 3)); data = rng.normal(size=(100, 500))
    for i in range(ROUNDS):
        r = emjax.fit(emjax.GaussianMixture(3), data, jax.random.key(i), n_init=2, max_iter=20, throw=False)
        r.objective.block_until_ready()
    print("finished")
""")

MANY_RESTARTS = textwrap.dedent("""
    import numpy as np, emjax
    from sklearn.datasets import load_iris
    x = load_iris(return_X_y=True)[0].astype(np.float32)
    r = emjax.fit(emjax.GaussianMixture(3), x, 0, n_init=10_000, throw=False)
    r.objective.block_until_ready()
    print("finished")
""")


@pytest.mark.slow
def test_soak_of_short_fits_that_used_to_hang():
    """F3: a 2-restart full-covariance fit of 100 x 500 hung in about 1 of 3 processes (XLA's
    2 pool threads each waiting inside a batched LAPACK solve). Four fresh processes of three
    fits each must all finish."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for _ in range(4):
        out = subprocess.run([sys.executable, "-c", SOAK.replace("ROUNDS", "3")], env=env,
                             capture_output=True, text=True, timeout=240)
        assert out.returncode == 0 and "finished" in out.stdout, out.stderr[-2000:]


@pytest.mark.slow
def test_many_restarts_of_small_matrices_finish():
    """iris, GaussianMixture(3), 10,000 restarts: 30,000 4 x 4 matrices per batched LAPACK solve
    went past its splitting threshold and the fit hung on its first run (two strsm calls each
    waiting on the other's pool work) while LAPACK still served matrices of d <= 4."""
    out = subprocess.run([sys.executable, "-c", MANY_RESTARTS], capture_output=True, text=True,
                         timeout=400, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert out.returncode == 0 and "finished" in out.stdout, out.stderr[-2000:]
