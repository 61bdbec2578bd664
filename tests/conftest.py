"""Fixtures shared by the whole suite. The suite mirrors the package:

core/ (argument checks, linear algebra, precision), components/, inference/, models/, engine/
(driver, fit, plan, chunking, sharding, memory, latency, and test_contract.py: the properties
every model must have, from one registry), extensions/ (SQUAREM, gradients, online, streaming),
selection/, shells/ (CLI, scikit-learn estimators, plotting, notebooks, docs, benchmark smoke);
reference/ holds the independent NumPy/brute-force references, helpers.py the shared helpers,
differential/ the differential harness. Lanes: ``make test`` runs every test not marked
``slow`` or ``verify``, ``make test-slow`` the ``slow`` ones, ``make verify`` the harness's grid.

``make test`` sets ``EMJAX_TEST_QUICK_COMPILE=1``: its programs are compiled with XLA's
optimisations mostly off (``jax_disable_most_optimizations``) and with XLA's older CPU loop
emitters (``--xla_cpu_use_fusion_emitters=false``, the emitters of a lean plan,
:data:`emjax.core.plan.LEAN_CPU_COMPILE`): the same arithmetic to rounding, compiled in about a
third of the CPU time (this suite's time is nearly all compiling: 1,040 -> 660 CPU-seconds). Both
settings hold for the whole process, so tests marked ``optimized`` (an XLA optimisation's defect,
the executable cache, which refuses unoptimised programs), which must compile as users do, are
skipped there; ``make test`` runs them in a second process without the variable. ``make
test-slow`` and ``make verify`` compile every program as users do.
"""
import gc
import os

# The suite runs without emjax's default persistent compilation cache (emjax.engine.compile_cache): no
# state carried between runs (a program loaded from disk fires no compile event, which
# engine/test_memory.py counts). engine/test_latency.py checks the cache in fresh processes.
os.environ.setdefault("EMJAX_NO_COMPILATION_CACHE", "1")

QUICK_COMPILE = os.environ.get("EMJAX_TEST_QUICK_COMPILE") == "1"
if QUICK_COMPILE:  # read by XLA when JAX first uses its CPU backend, so set before any test runs
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_use_fusion_emitters=false".strip()

import jax  # noqa: E402
import pytest  # noqa: E402

from helpers import blobs  # noqa: E402


if QUICK_COMPILE:
    jax.config.update("jax_disable_most_optimizations", True)

SKIP_OPTIMIZED = pytest.mark.skip(reason="compiles as users do: make test runs it in a second process, "
                                         "without EMJAX_TEST_QUICK_COMPILE")


def pytest_collection_modifyitems(items):
    """In the quick-compile lane, tests marked ``optimized`` are skipped (module docstring).
    Tests that drop the compiled programs (``no_compiled_programs``) run first (in their collected
    order), while there is nothing to drop; pytest-xdist hands them out first too. Run among the
    others, each drop made the tests after it compile again the programs they share."""
    if QUICK_COMPILE:
        for item in items:
            if item.get_closest_marker("optimized") is not None:
                item.add_marker(SKIP_OPTIMIZED)
    items.sort(key=lambda item: "no_compiled_programs" not in getattr(item, "fixturenames", ()))


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
