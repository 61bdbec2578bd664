"""Fixtures shared by the whole suite. The suite mirrors the package:

core/ (argument checks, linear algebra, precision), components/, inference/, models/, engine/
(driver, fit, plan, chunking, sharding, memory, latency, and test_contract.py: the properties
every model must have, from one registry), extensions/ (SQUAREM, gradients, online, streaming),
selection/, shells/ (CLI, scikit-learn estimators, plotting, notebooks, docs, benchmark smoke);
reference/ holds the independent NumPy/brute-force references, helpers.py the shared helpers,
differential/ the differential harness. Lanes: ``make test`` runs every test not marked
``slow`` or ``verify``, ``make test-slow`` the ``slow`` ones, ``make verify`` the harness's grid.

``make test`` sets ``EMJAX_TEST_QUICK_COMPILE=1``: its programs are compiled with XLA's
optimisations mostly off (``jax_disable_most_optimizations``; about 1.4x faster on this suite,
whose time is nearly all compiling; the same arithmetic to rounding). Tests marked ``optimized``
(an XLA optimisation's defect, the executable cache, which refuses such programs) still compile
as users do; ``make test-slow`` and ``make verify`` compile every program as users do.
"""
import gc
import os

# The suite runs without emjax's default persistent compilation cache (emjax.engine.compile_cache): no
# state carried between runs (a program loaded from disk fires no compile event, which
# engine/test_memory.py counts). engine/test_latency.py checks the cache in fresh processes.
os.environ.setdefault("EMJAX_NO_COMPILATION_CACHE", "1")

import jax  # noqa: E402
import pytest  # noqa: E402

from helpers import blobs  # noqa: E402


QUICK_COMPILE = os.environ.get("EMJAX_TEST_QUICK_COMPILE") == "1"
if QUICK_COMPILE:
    jax.config.update("jax_disable_most_optimizations", True)


def _set_optimizations(on: bool) -> bool:
    """Compiles with XLA's optimisations ``on`` or mostly off (``jax_disable_most_optimizations``);
    the flag is not part of JAX's compile key, so compiled programs are dropped whenever it
    changes. Returns whether they were on before."""
    was_on = not jax.config.values["jax_disable_most_optimizations"]
    if was_on != on:
        jax.clear_caches()
        jax.config.update("jax_disable_most_optimizations", not on)
    return was_on


def _drops_programs(item) -> bool:
    """Whether ``item`` drops the process's compiled programs: it is marked ``optimized`` (in the
    quick-compile lane) or asks for ``no_compiled_programs``."""
    return ((QUICK_COMPILE and item.get_closest_marker("optimized") is not None)
            or "no_compiled_programs" in getattr(item, "fixturenames", ()))


def pytest_collection_modifyitems(items):
    """Tests that drop the compiled programs run first (in their collected order), while there
    is nothing to drop; pytest-xdist hands them out first too. Run among the others, each drop
    made the tests after it compile again the programs they share."""
    items.sort(key=lambda item: not _drops_programs(item))  # a stable sort


@pytest.fixture(autouse=True)
def _optimized_marker(request):
    """Tests marked ``optimized`` compile with XLA's optimisations on, in every lane. The setting
    is switched when a test needs the other one, not back after each test: consecutive
    ``optimized`` tests share their programs."""
    optimized = request.node.get_closest_marker("optimized") is not None
    _set_optimizations(optimized or not QUICK_COMPILE)
    yield


@pytest.fixture
def data():
    """300 float32 rows of three well separated 2-d blobs (:func:`helpers.blobs`)."""
    return blobs()[0]


@pytest.fixture
def x64():
    """Runs a test with 64-bit floats enabled (jax's default is float32)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def no_compiled_programs():
    """Drops JAX's compiled programs before the test, for tests that check that a call compiles
    a new program: programs are shared across modules, so an earlier test may have compiled it."""
    jax.clear_caches()


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


@pytest.fixture(autouse=True)
def _drop_compiled_programs_near_the_mapping_limit():
    """After any test, drop JAX's compiled programs once this process holds more than half of
    vm.max_map_count memory mappings (Linux). Every compiled CPU program keeps its own executable
    memory mappings (about 150-300 each); kept for a whole run they would reach the kernel's
    per-process limit (65530 by default) and LLVM would fail with "Cannot allocate memory". Until
    then, programs are shared across modules: many modules fit the same models at the same
    shapes, and each compile costs seconds. Tests that count compilations count them around the
    call they check (``_cache_size()`` before and after, or JAX's compile events), never from the
    start of a module."""
    yield
    if MAX_MAP_COUNT is not None and _n_mappings() > MAX_MAP_COUNT // 2:
        jax.clear_caches()
        gc.collect()
