"""Smoke test of the benchmark harness: a tiny run of W1 and W5 with emjax and scikit-learn.

No timing assertions: only that the harness runs, writes one JSON line per (workload, library)
with the expected keys and finite values, and renders its page; and that a complete run replaces
the latest one in the results folder, which moves to the archive.
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
sys.path.insert(0, str(ROOT / "benchmarks"))
import store  # noqa: E402

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
    raw, = (tmp_path / "archive").glob("*_small-W1-W5.jsonl")  # <date-time>_<commit>_<machine>_<scope>
    assert str(tmp_path) not in raw.read_text()  # no scratch or checkout path recorded
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

    report = raw.with_suffix(".md").read_text()  # a partial run's page sits beside its lines
    assert "### W1" in report and "### W5" in report and "gpu.sh" in report
    assert f"]({raw.name})" in report  # the page links its raw lines ...
    assert "docs/guide/benchmarks.md)" in report and "**Noise.**" not in report  # ... and the notes, uncopied


def _complete_run(folder, started, commit):
    header = dict(kind="run", scale="full", started=started, git={"commit": commit, "emjax_dirty": False},
                  machine={"jax_backend": "cpu", "cpu_count": 2}, workloads=list(store.ALL_WORKLOADS),
                  libraries=["emjax", "sklearn"])
    header["archive_name"] = store.dated_name(header, header["workloads"])
    path = store.raw_path(str(folder), header)
    with open(path, "w") as f:
        f.write(json.dumps(header) + "\n")
    return header, path


def test_complete_run_replaces_the_latest_and_archives_it(tmp_path):
    first, path = _complete_run(tmp_path, "2026-11-26T11:16:51+00:00", "300ff79")
    assert first["archive_name"] == "2026-11-26-1116_300ff79_cpu2_full.jsonl"
    assert store.latest_name(first, ["emjax", "sklearn"]) == "cpu"
    assert store.latest_name(first, ["emjax", "sklearn", "gmmx"]) is None  # a peer left out
    store.publish(str(tmp_path), path, "cpu")
    assert not list((tmp_path / "archive").iterdir())
    second, path = _complete_run(tmp_path, "2026-12-07T09:00:00+00:00", "db96a7f")
    store.publish(str(tmp_path), path, "cpu")
    assert store.run_header(str(tmp_path / "cpu.jsonl"))["git"]["commit"] == "db96a7f"
    assert [p.name for p in (tmp_path / "archive").iterdir()] == [first["archive_name"]]
