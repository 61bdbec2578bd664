"""Sharded data: rows split over devices give the one-device fit, and the compiled program
all-reduces statistics without gathering the data.

The 8-device checks run in ONE subprocess (``sharding_worker.py``) with
``--xla_force_host_platform_device_count=8`` so this process keeps its single device. The
reference is the same fit on one device (itself checked against scikit-learn elsewhere).
"""
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import emjax
from emjax.engine.driver import history_size

pytestmark = pytest.mark.slow  # starts Python processes: make test-slow

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(HERE / "sharding_worker.py")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dtype, mesh, rtol", [
    ("float32", "data8", 1e-6), ("float32", "data4_restarts2", 1e-6), ("float64", "data8", 1e-12)])
def test_sharded_fit_equals_one_device(report, dtype, mesh, rtol):
    assert report["devices"] == 8
    got = report[dtype][mesh]
    assert got["dtype"] == dtype
    assert got["fit_error"] < rtol
    assert got["em_error"] is None or got["em_error"] < rtol
    assert got["same_n_iter"] and got["same_status"]
    assert got["statuses"] == [emjax.Status.CONVERGED] * 4
    assert got["restart_block"] == 2  # 2 blocks of 2 restarts against all 4 at once on one device


@pytest.mark.parametrize("mesh, padded", [("data8", 1008), ("data4_restarts2", 1004)])
def test_rows_padded_with_zero_weight_to_the_data_axis(report, mesh, padded):
    assert report["float32"][mesh]["padded_rows"] == padded  # 1003 rows, no error


def test_statistics_are_all_reduced_and_data_never_gathered(report):
    one_axis = report["float32"]["data8"]
    assert one_axis["all_reduces"] > 0
    assert one_axis["all_gather_sizes"] == []
    # restarts split over a second axis: only per-restart results (4 restarts, the history
    # buffer of history_size(25) = 128 iterations) are gathered for the best pick, nothing of the
    # size of a device's rows
    two_axes = report["float32"]["data4_restarts2"]
    assert two_axes["all_reduces"] > 0
    gathered = max(two_axes["all_gather_sizes"], default=0)
    assert gathered <= history_size(25) < two_axes["rows_per_device"]


@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-6), ("float64", 1e-12)])
def test_sharded_hmm_equals_one_device(report, dtype, rtol):
    got = report[f"hmm_{dtype}"]
    assert got["dtype"] == dtype
    assert got["fit_error"] < rtol
    assert got["same_n_iter"] and min(got["n_iter"]) > 3  # several iterations, not one step
    assert got["statuses"] == [emjax.Status.CONVERGED] * 2


def test_hmm_sequences_padded_with_valid_zero_weight_sequences(report):
    got = report["hmm_float32"]
    assert got["padded_rows"] == 8  # 5 sequences over 8 devices
    assert got["padded_lengths"][:5] == [30, 17, 25, 9, 30]
    assert all(1 <= n <= 30 for n in got["padded_lengths"][5:])
    assert got["padded_weights"] == [1.0] * 5 + [0.0] * 3


def test_hmm_statistics_are_all_reduced_and_sequences_never_gathered(report):
    assert report["hmm_float32"]["all_reduces"] > 0
    assert report["hmm_float32"]["all_gather_sizes"] == []


@pytest.mark.parametrize("case, match", [
    ("n_init_not_multiple", r"n_init=3 must be a multiple of 2.*\('restarts',\)"),
    ("no_weights", "weights must be given"),
    ("explicit_mesh", r"not AxisType.Auto"),
    ("unknown_axis", r"axis='rows' is not an axis of the mesh"),
])
def test_bad_mesh_input_raises(report, case, match):
    assert report["errors"][case] is not None
    assert re.search(match, report["errors"][case])


def test_shard_on_one_device_is_a_plain_fit(x64):
    x = np.random.default_rng(0).normal(size=(40, 2))
    mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    xs, w = emjax.shard(x, mesh, weights=np.full(40, 2.0))
    assert xs.shape == (40, 2) and np.all(np.asarray(w) == 2.0)
    with pytest.raises(ValueError, match="NaN"):
        emjax.shard(np.array([[0.0, np.nan]]), mesh)


def test_shard_places_a_pytree_of_rows(x64):
    mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    x, lengths = np.random.default_rng(0).normal(size=(3, 4, 2)), np.array([4, 2, 3])
    seqs, w = emjax.shard((x, lengths), mesh, model=emjax.GaussianHMM(2))
    assert type(seqs).__name__ == "Sequences" and seqs.x.dtype == np.float64
    assert np.array_equal(seqs.x, x) and np.array_equal(seqs.lengths, lengths)
    assert np.array_equal(w, np.ones(3))
    raw, _ = emjax.shard({"x": x, "n": lengths}, mesh)  # no model: leaves kept as they are
    assert raw["n"].dtype.kind == "i" and np.array_equal(raw["x"], x)


@pytest.mark.parametrize("data, model, match", [
    ((np.zeros((3, 4, 2)), np.array([4, 2])), None,
     r"share the leading \(row\) axis; data\[0\] has 3 rows but data\[1\] has 2"),
    ((np.zeros((3, 4, 2)), np.array([4, 2])), "hmm", r"lengths must have shape \(3,\)"),
    ((np.zeros((3, 4, 2)), np.array([4, 0, 1])), "hmm", r"lengths must be >= 1.*index 1"),
    ({"x": np.array([[0.0, np.inf]]), "n": np.array([1])}, None, r"data\['x'\] contains 1 inf"),
    ((np.zeros((0, 2)), np.zeros((0,))), None, r"data\[0\] must have at least one row"),
])
def test_shard_rejects_bad_pytrees(data, model, match):
    mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    with pytest.raises(ValueError, match=match):
        emjax.shard(data, mesh, model=emjax.GaussianHMM(2) if model == "hmm" else None)
