import os

# The suite runs without emjax's default persistent compilation cache (emjax.compile_cache): no
# state carried between runs (a program loaded from disk fires no compile event, which
# test_memory_w6 counts). tests/test_latency.py checks the cache in fresh processes.
os.environ.setdefault("EMJAX_NO_COMPILATION_CACHE", "1")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def full_covariances(cov, covariance_type, k, d):
    """(k, d, d) float64 covariances from any of scikit-learn's four covariance shapes."""
    cov = np.asarray(cov, np.float64)
    if covariance_type == "full":
        return cov
    if covariance_type == "tied":
        return np.broadcast_to(cov, (k, d, d))
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(d)


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


@pytest.fixture(scope="module")
def quick_compile():
    """A module's programs compiled with XLA's optimisations mostly off
    (``jax_disable_most_optimizations``): about half the compile time, the same results, slower
    runs. For modules whose time is nearly all compiling on tiny data (scikit-learn's checks)."""
    previous = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(autouse=True, scope="module")
def _drop_compiled_programs():
    """Drop JAX's compiled programs after each test module. One process runs the whole suite,
    and every compiled CPU program keeps its own executable memory mappings: kept for the whole
    run, they reach the kernel's per-process mapping limit (vm.max_map_count) and LLVM fails
    with "Cannot allocate memory" late in the suite."""
    yield
    jax.clear_caches()
