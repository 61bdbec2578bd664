"""Smoke test of the benchmark harness: a tiny run of W1 and W5 with emjax and scikit-learn.

No timing assertions: only that the harness runs, writes one JSON line per (workload, library)
with the expected keys and finite values, and renders a RESULTS file.
"""
import json
import math
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # starts Python processes: make test-slow

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUN = ROOT / "benchmarks" / "run.py"

FIT_KEYS = {"workload", "library", "status", "wall_s", "cpu_s", "compile_s", "n_iter", "restarts",
            "datasets", "restart_iters_per_s", "loglik", "gflops_per_s", "max_iter", "n", "d", "k"}


@pytest.mark.slow
def test_bench_small_run_writes_finite_results(tmp_path):
    pytest.importorskip("sklearn")
    proc = subprocess.run(
        [sys.executable, str(RUN), "--scale", "small", "--workloads", "W1,W5",
         "--libraries", "emjax,sklearn", "--repeats", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    raw, = (tmp_path / "results").glob("*_small-W1-W5.jsonl")  # <date-time>_<commit>_<machine>_<scope>
    lines = [json.loads(line) for line in raw.read_text().splitlines()]

    head = [r for r in lines if r["kind"] == "run"]
    assert len(head) == 1
    assert head[0]["matmul"]["gflops"] > 0
    assert head[0]["versions"]["emjax"]

    fits = [r for r in lines if r["kind"] == "fit"]
    assert {(r["workload"], r["library"]) for r in fits} == {
        ("W1", "emjax"), ("W1", "sklearn"), ("W5", "emjax"), ("W5", "sklearn")}
    for r in fits:
        assert r["status"] == "ok", r.get("error")
        assert FIT_KEYS <= r.keys(), FIT_KEYS - r.keys()
        for key in ("wall_s", "cpu_s", "n_iter", "restart_iters_per_s", "loglik", "gflops_per_s"):
            assert math.isfinite(r[key]), (r["workload"], r["library"], key, r[key])
        assert r["wall_s"] > 0 and r["restart_iters_per_s"] > 0
        assert r["n_iter"] == r["max_iter"]  # tol=0: a fixed iteration count
        if r["library"] == "emjax":
            assert math.isfinite(r["compile_s"]) and r["compile_s"] > 0
        else:
            assert r["compile_s"] is None

    report = (tmp_path / "RESULTS-small.md").read_text()
    assert "### W1" in report and "### W5" in report and "RESULTS-gpu.md" in report
    assert f"](results/{raw.name})" in report  # the page links its raw lines ...
    assert "analysis.md)" in report and "**Noise.**" not in report  # ... and the notes, uncopied
