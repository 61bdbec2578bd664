import jax
import numpy as np
import pytest


def blobs(n=300, d=2, k=3, seed=0, spread=6.0, dtype=np.float32):
    """Well separated Gaussian blobs (NumPy, fixed seed)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(k, d))
    labels = rng.integers(k, size=n)
    return (centres[labels] + rng.normal(size=(n, d))).astype(dtype), labels


@pytest.fixture
def data():
    return blobs()[0]


@pytest.fixture
def x64():
    """Runs a test with 64-bit floats enabled (jax's default is float32)."""
    with jax.enable_x64(True):
        yield
