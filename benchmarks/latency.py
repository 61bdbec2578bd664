"""Latency of emjax's first fits: compile time against run time (issue 16).

Each part runs in a fresh process (``python benchmarks/latency.py`` runs them all):

- ``first``: a first fit of a GaussianMixture(3, "full") on wine (178 x 13, standardised),
  compile and run timed apart (:func:`emjax.timed_fit`), then, in the same process, the same
  fit again (through ``emjax.fit``'s call cache), a fit on
  another row count in the same bucket (170 rows), one with another ``max_iter``, one with
  another ``tol`` and one with 9 restarts instead of 10: whether each compiled, and its wall
  time. No persistent cache.
- ``warm``: a fresh process's first fit when JAX's persistent cache already holds the program
  (the cache is warmed by one process, then timed in a second; a private cache directory).
- ``cv``: 3 K x 5 folds on wine: a loop over ``emjax.fit`` + ``log_prob`` on each fold, and
  scikit-learn's ``GridSearchCV(GaussianMixture)``; ``emjax.sklearn.GaussianMixture`` in
  GridSearchCV too when that module exists (skipped otherwise). Cold (no persistent cache)
  and warm; then both GridSearchCVs again, alternating in the same process (median of 5 each),
  with BLAS as configured and limited to one thread.
- ``cv_fresh``: a fresh process (warm caches) runs emjax.sklearn's GridSearchCV, then
  scikit-learn's with one BLAS thread; three processes.

``python benchmarks/latency.py fresh`` runs only the fresh-process figures, alternating: with a
private cache directory filled by one process, rounds of ``cv_fresh`` and ``fit_once`` with both
caches warm, and the same with the executable cache off (``EMJAX_NO_EXECUTABLE_CACHE=1``: JAX's
persistent compilation cache alone).

Prints one JSON object per part. Absolute times depend on the machine and its load: say which.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KS = (2, 3, 4)


def wine():
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(load_wine().data)


def part_first():
    import emjax

    x = wine()
    model = emjax.GaussianMixture(3, "full")
    _, compile_s, run_s = emjax.timed_fit(model, x, 0, n_init=10)
    out = {"part": "first", "compile_s": compile_s, "run_s": run_s}
    # timed_fit compiles ahead of time, outside jit's call cache: one plain call enters it
    again = emjax.fit(model, x, 0, n_init=10).timing
    out["same_again_s"] = again.seconds
    for name, data, kwargs in [("other_n_same_bucket", x[:170], {}),
                               ("other_max_iter", x, dict(max_iter=60)),
                               ("other_tol", x, dict(tol=1e-5)),
                               ("other_n_init_same_bucket", x, dict(n_init=9))]:
        result = emjax.fit(model, data, 0, **{"n_init": 10, "throw": False, **kwargs})
        out[name] = {"seconds": result.timing.seconds, "compiled": result.timing.compiled}
    return out


def part_fit_once():
    """The timed body of ``warm``: a fresh process's first fit (import excluded)."""
    start = time.perf_counter()
    import emjax

    imported = time.perf_counter()
    result = emjax.fit(emjax.GaussianMixture(3, "full"), wine(), 0, n_init=10)
    from emjax.engine.restarts import _fit_cache

    return {"part": "fit_once", "import_s": imported - start, "fit_s": result.timing.seconds,
            "compiled": result.timing.compiled, "executable_cache": vars(_fit_cache.stats)}


def part_cv():
    import numpy as np
    from sklearn.mixture import GaussianMixture as SkGMM
    from sklearn.model_selection import GridSearchCV, KFold

    import emjax

    x = wine()
    folds = list(KFold(5, shuffle=True, random_state=0).split(x))
    start = time.perf_counter()
    scores = {}
    for k in KS:
        model = emjax.GaussianMixture(k, "full")
        per_fold = []
        for i, (train, test) in enumerate(folds):
            result = emjax.fit(model, x[train], i, throw=False)
            per_fold.append(float(np.mean(model.log_prob(result.params, x[test]))))
        scores[k] = float(np.mean(per_fold))
    out = {"part": "cv", "emjax_loop_s": time.perf_counter() - start, "emjax_loop_scores": scores}
    start = time.perf_counter()
    search = GridSearchCV(SkGMM(random_state=0), {"n_components": list(KS)}, cv=folds).fit(x)
    out["sklearn_gridsearch_s"] = time.perf_counter() - start
    out["sklearn_scores"] = dict(zip(KS, map(float, search.cv_results_["mean_test_score"])))
    try:
        from emjax.sklearn import GaussianMixture as EmjaxGMM
    except ImportError:
        out["emjax_sklearn_gridsearch_s"] = "skipped: emjax.sklearn not available"
        return out
    start = time.perf_counter()
    GridSearchCV(EmjaxGMM(random_state=0), {"n_components": list(KS)}, cv=folds).fit(x)
    out["emjax_sklearn_gridsearch_s"] = time.perf_counter() - start
    out.update(alternating(EmjaxGMM, SkGMM, x, folds))
    return out


def alternating(emjax_gmm, sklearn_gmm, x, folds, rounds: int = 5) -> dict:
    """The two GridSearchCVs again, alternating in this process (each program already traced):
    the median seconds of each over ``rounds``, with BLAS as configured and with BLAS limited to
    one thread (scikit-learn's small triangular solves slow down by orders of magnitude with
    threaded OpenBLAS on a busy 2-core machine)."""
    from sklearn.model_selection import GridSearchCV
    from threadpoolctl import threadpool_limits

    search = lambda gmm: GridSearchCV(gmm(random_state=0), {"n_components": list(KS)}, cv=folds)
    out = {}
    for name, limit in [("blas_default", None), ("blas_1_thread", 1)]:
        times = {"emjax": [], "sklearn": []}
        with threadpool_limits(limits=limit, user_api="blas"):
            for _ in range(rounds):
                for side, gmm in (("emjax", emjax_gmm), ("sklearn", sklearn_gmm)):
                    start = time.perf_counter()
                    search(gmm).fit(x)
                    times[side].append(time.perf_counter() - start)
        emjax_s, sklearn_s = (float(sorted(t)[len(t) // 2]) for t in times.values())
        out[f"again_{name}"] = {"emjax_s": emjax_s, "sklearn_s": sklearn_s,
                                "ratio": emjax_s / sklearn_s}
    return out


def part_cv_fresh():
    """A fresh process's first ``GridSearchCV`` of ``emjax.sklearn.GaussianMixture``, then
    scikit-learn's with one BLAS thread (what an idle 2-core machine gives it), in one process."""
    from sklearn.mixture import GaussianMixture as SkGMM
    from sklearn.model_selection import GridSearchCV, KFold
    from threadpoolctl import threadpool_limits

    from emjax.sklearn import GaussianMixture as EmjaxGMM

    x = wine()
    folds = list(KFold(5, shuffle=True, random_state=0).split(x))
    search = lambda gmm: GridSearchCV(gmm(random_state=0), {"n_components": list(KS)}, cv=folds)
    start = time.perf_counter()
    search(EmjaxGMM).fit(x)
    emjax_s = time.perf_counter() - start
    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        search(SkGMM).fit(x)
        sklearn_s = time.perf_counter() - start
    from emjax.engine.restarts import _fit_cache

    return {"part": "cv_fresh", "emjax_sklearn_first_gridsearch_s": emjax_s,
            "sklearn_gridsearch_1_blas_thread_s": sklearn_s, "ratio": emjax_s / sklearn_s,
            "executable_cache": vars(_fit_cache.stats)}


PARTS = {"first": part_first, "fit_once": part_fit_once, "cv": part_cv, "cv_fresh": part_cv_fresh}


def run_part(name: str, env: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, name], env=env, capture_output=True, text=True,
                          cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"part {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    base = {**os.environ, "PYTHONPATH": ROOT}
    cold = {**base, "EMJAX_NO_COMPILATION_CACHE": "1"}
    cold.pop("JAX_COMPILATION_CACHE_DIR", None)
    print(json.dumps(run_part("first", cold)), flush=True)
    with tempfile.TemporaryDirectory() as cache:
        warm = {**base, "XDG_CACHE_HOME": cache}
        warm.pop("JAX_COMPILATION_CACHE_DIR", None)
        warm.pop("EMJAX_NO_COMPILATION_CACHE", None)
        print(json.dumps({**run_part("fit_once", warm), "cache": "cold (filling)"}), flush=True)
        print(json.dumps({**run_part("fit_once", warm), "cache": "warm"}), flush=True)
        print(json.dumps({**run_part("cv", cold), "cache": "none"}), flush=True)
        run_part("cv", warm)  # fills the cache
        print(json.dumps({**run_part("cv", warm), "cache": "warm"}), flush=True)
        for _ in range(3):
            print(json.dumps({**run_part("cv_fresh", warm), "cache": "warm"}), flush=True)


def main_fresh(rounds: int = 3) -> None:
    """Fresh processes with warm caches, with and without the executable cache, alternating."""
    base = {**os.environ, "PYTHONPATH": ROOT}
    for name in ("JAX_COMPILATION_CACHE_DIR", "EMJAX_NO_COMPILATION_CACHE", "EMJAX_NO_EXECUTABLE_CACHE"):
        base.pop(name, None)
    with tempfile.TemporaryDirectory() as cache:
        warm = {**base, "XDG_CACHE_HOME": cache}
        compilation_only = {**warm, "EMJAX_NO_EXECUTABLE_CACHE": "1"}
        for env in (compilation_only, warm):  # fills both caches
            run_part("cv_fresh", env)
            run_part("fit_once", env)
        for _ in range(rounds):
            for label, env in (("both caches warm", warm), ("compilation cache only", compilation_only)):
                for part in ("cv_fresh", "fit_once"):
                    print(json.dumps({**run_part(part, env), "cache": label}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["fresh"]:
        main_fresh()
    elif len(sys.argv) > 1:
        print(json.dumps(PARTS[sys.argv[1]]()))
    else:
        main()
