"""emjax.engine.executable_cache: a second process runs emjax.fit's program from disk without tracing it,
with results bit-identical to the ordinary jitted fit; any change of what determines the program
misses; a damaged entry or the environment variable falls back to the ordinary path.

The suite runs with EMJAX_NO_COMPILATION_CACHE=1 (conftest), so the end-to-end checks run in
fresh processes with a private cache directory, on a tiny diagonal mixture."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

import emjax
from emjax.engine import executable_cache
from emjax.engine.restarts import _fit_cache, _prepare

# the cache refuses programs compiled with XLA's optimisations off (make test's quick lane)
pytestmark = pytest.mark.optimized

ROOT = Path(__file__).resolve().parents[1]

# One fit, reported as JSON: the best objective and parameters (exact bytes), the cache's counts,
# and how often _fit_program was traced or lowered in this process (jax.monitoring events).
WORKER = textwrap.dedent("""
    import json, os, sys
    import jax
    traced = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **kw: traced.append(event) if "_fit_program" in str(kw.get("fun_name")) else None)
    import numpy as np
    import emjax
    from emjax.engine.restarts import _fit_cache

    def fit(x):
        result = emjax.fit(emjax.GaussianMixture(2, "diag"), x, 0, n_init=2)
        leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(result.params)]
        return {"objective": float(result.objective).hex(), "params": [v.tobytes().hex() for v in leaves],
                "dtype": str(leaves[0].dtype), "compiled": result.timing.compiled}

    def step(name, x):
        before, counts = len(traced), dict(vars(_fit_cache.stats))
        out = fit(x)
        out["traced"] = len(traced) - before
        out["stats"] = {k: v - counts[k] for k, v in vars(_fit_cache.stats).items()}
        report[name] = out

    x = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    x[:20] += 5
    report = {}
    for name in sys.argv[1].split(","):
        if name == "plain":
            step(name, x)
        elif name == "uncached":  # the environment variable is read at each call
            os.environ["EMJAX_NO_EXECUTABLE_CACHE"] = "1"
            step(name, x)
            del os.environ["EMJAX_NO_EXECUTABLE_CACHE"]
        elif name == "corrupt":  # every entry cut in half, and this process's loaded ones forgotten
            for path in emjax.engine.executable_cache.cache_dir().glob("*.exe"):
                path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            _fit_cache._loaded.clear()
            step(name, x)
            _fit_cache._loaded.clear()
            step("after_corrupt", x)
        elif name == "x64":
            jax.config.update("jax_enable_x64", True)
            step(name, x)
    print(json.dumps(report))
""")


def _run(steps: str, cache: Path, **extra_env) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("EMJAX_NO_COMPILATION_CACHE", "EMJAX_NO_EXECUTABLE_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    env.update(XDG_CACHE_HOME=str(cache), PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **extra_env)
    done = subprocess.run([sys.executable, "-c", WORKER, steps], env=env, capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _same_fit(a: dict, b: dict) -> bool:
    return (a["objective"], a["params"]) == (b["objective"], b["params"])


@pytest.mark.slow  # fresh Python processes
def test_second_process_loads_without_tracing_and_matches_the_uncached_fit(tmp_path):
    first = _run("plain", tmp_path)["plain"]
    assert first["stats"]["compiled"] == 1 and first["traced"] > 0 and first["compiled"]
    assert len(list((tmp_path / "emjax" / "executables").glob("*.exe"))) == 1

    second = _run("plain,uncached,corrupt,x64", tmp_path)
    loaded = second["plain"]
    assert loaded["stats"]["loaded"] == 1 and loaded["traced"] == 0 and not loaded["compiled"]
    # the ordinary jitted program (cache off by its variable) computes the same bits
    uncached = second["uncached"]
    assert uncached["stats"]["bypassed"] == 1 and uncached["traced"] > 0
    assert _same_fit(loaded, first) and _same_fit(loaded, uncached)
    # a damaged entry is not used: the program is compiled again, correctly, and rewritten
    corrupt, rewritten = second["corrupt"], second["after_corrupt"]
    assert corrupt["stats"]["compiled"] == 1 and corrupt["stats"]["loaded"] == 0
    assert rewritten["stats"]["loaded"] == 1 and rewritten["traced"] == 0
    assert _same_fit(corrupt, first) and _same_fit(rewritten, first)
    # 64-bit mode is another program: a miss, never the 32-bit entry
    x64 = second["x64"]
    assert x64["stats"]["compiled"] == 1 and x64["stats"]["loaded"] == 0 and x64["traced"] > 0


@pytest.mark.slow
def test_the_environment_variables_turn_it_off(tmp_path, monkeypatch, data):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for variable in ("EMJAX_NO_EXECUTABLE_CACHE", "EMJAX_NO_COMPILATION_CACHE"):
        monkeypatch.delenv("EMJAX_NO_EXECUTABLE_CACHE", raising=False)
        monkeypatch.delenv("EMJAX_NO_COMPILATION_CACHE", raising=False)
        assert executable_cache.cache_dir() == tmp_path / "emjax" / "executables"
        monkeypatch.setenv(variable, "1")
        assert executable_cache.cache_dir() is None
        before = _fit_cache.stats.bypassed
        emjax.fit(emjax.GaussianMixture(2, "diag"), data, 0)
        assert _fit_cache.stats.bypassed == before + 1
        assert not (tmp_path / "emjax").exists()


def _digest(model, x, **options):
    args, static = _prepare(model, x, 0, options.pop("n_init", 1), None, 100, 1e-3, None, None)
    entry = _fit_cache.entry(args, static)
    return None if entry is None else entry.digest


@dataclasses.dataclass(frozen=True)
class _OutsideModel(emjax.GaussianMixture):
    """A model class defined outside emjax: its code is not in the key."""


def test_every_ingredient_of_the_program_changes_the_key(data):
    model = emjax.GaussianMixture(2, "diag")
    base = _digest(model, data)
    assert base is not None and _digest(emjax.GaussianMixture(2, "diag"), data.copy()) == base
    assert _digest(model, data[:290]) == base  # 290 and 300 rows: one bucket (320): the same program
    variants = {
        "row bucket": _digest(model, data[:100]),
        "static field": _digest(emjax.GaussianMixture(2, "diag", reg_covar=1e-4), data),
        "covariance type": _digest(emjax.GaussianMixture(2, "full"), data),
        "restart bucket": _digest(model, data, n_init=4),
        "features": _digest(model, np.hstack([data, data])),
    }
    with jax.enable_x64(True):
        variants["x64, float32 data"] = _digest(model, data)
        variants["x64, float64 data"] = _digest(model, data.astype(np.float64))
    with jax.default_matmul_precision("highest"):
        variants["matmul precision"] = _digest(model, data)
    assert None not in variants.values()
    assert len({base, *variants.values()}) == len(variants) + 1, variants


def test_calls_that_are_never_cached(data):
    assert _digest(_OutsideModel(2, "diag"), data) is None
    with jax.disable_jit():
        assert _digest(emjax.GaussianMixture(2), data) is None
    previous = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)  # such CPU programs cannot be reloaded
    try:
        assert _digest(emjax.GaussianMixture(2), data) is None
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)
    seen = []

    @jax.jit
    def inside(x):
        seen.append(_digest(emjax.GaussianMixture(2), data))  # concrete data, in a caller's trace
        return x

    inside(1.0)
    assert seen == [None]
    args, static = _prepare(emjax.GaussianMixture(2), data, 0, 1, None, 100, 1e-3, None, None)
    assert _fit_cache.entry(args, static) is not None
    assert _fit_cache.entry(args, {**static, "monitor": print}) is None  # a host callback
    lean = dataclasses.replace(static["plan"], lean_compile=True)  # large data: compiling is cheap
    assert _fit_cache.entry(args, {**static, "plan": lean}) is None
