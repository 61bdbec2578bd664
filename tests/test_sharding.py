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

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
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


@pytest.mark.parametrize("mesh, padded", [("data8", 1008), ("data4_restarts2", 1004)])
def test_rows_padded_with_zero_weight_to_the_data_axis(report, mesh, padded):
    assert report["float32"][mesh]["padded_rows"] == padded  # 1003 rows, no error


def test_statistics_are_all_reduced_and_data_never_gathered(report):
    one_axis = report["float32"]["data8"]
    assert one_axis["all_reduces"] > 0
    assert one_axis["all_gather_sizes"] == []
    # restarts split over a second axis: only per-restart results (4 restarts, 25 iterations of
    # history) are gathered for the best pick, nothing of the size of a device's rows
    two_axes = report["float32"]["data4_restarts2"]
    assert two_axes["all_reduces"] > 0
    assert max(two_axes["all_gather_sizes"], default=0) < two_axes["rows_per_device"] // 4


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
