import gc
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


def _max_map_count():
    """The kernel's per-process limit on memory mappings (Linux), else None."""
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _n_mappings() -> int:
    with open("/proc/self/maps", "rb") as f:
        return sum(1 for _ in f)


MAX_MAP_COUNT = _max_map_count()


def _in_differential_harness(module) -> bool:
    return os.path.basename(os.path.dirname(module.__file__)) == "differential"


@pytest.fixture(autouse=True, scope="module")
def _drop_compiled_programs(request):
    """Drop JAX's compiled programs before and after each test module. One process runs the
    whole suite, and every compiled CPU program keeps its own executable memory mappings (about
    150-300 each): kept for the whole run, they reach the kernel's per-process mapping limit
    (vm.max_map_count, 65530 by default) and LLVM fails with "Cannot allocate memory" late in
    the suite. Every module also starts with no program compiled (tests that count compilations
    rely on it). The differential harness (tests/differential) is the exception on Linux: its
    modules share programs (one compile per model, shape and path), and they are dropped only
    when the mappings near the limit (:func:`_drop_compiled_programs_near_the_mapping_limit`)."""
    keep = MAX_MAP_COUNT is not None and _in_differential_harness(request.module)
    if not keep:
        jax.clear_caches()
    yield
    if not keep:
        jax.clear_caches()


@pytest.fixture(autouse=True)
def _drop_compiled_programs_near_the_mapping_limit():
    """After any test, drop JAX's compiled programs once this process holds more than half of
    vm.max_map_count memory mappings (Linux), whichever module compiled them: a module with
    hundreds of programs (the harness's full grid) would otherwise reach the limit within it."""
    yield
    if MAX_MAP_COUNT is not None and _n_mappings() > MAX_MAP_COUNT // 2:
        jax.clear_caches()
        gc.collect()
