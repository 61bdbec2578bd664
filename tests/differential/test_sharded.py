"""Every model configuration with its rows sharded over 8 emulated devices: one EM step of ``em``
and of ``fit`` (restarts also split over a second mesh axis) against the float64 reference.

The 8-device runs happen in ONE subprocess per lane (``sharded_worker.py``, with
``--xla_force_host_platform_device_count=8``) that loops over the registry, so this process keeps
its single device.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .grid import FAST_BY_PATH, cases, verify
from .registry import BY_NAME

TESTS = Path(__file__).resolve().parent.parent
FAST = list(FAST_BY_PATH["sharded"])
FULL = [c for c in BY_NAME if c not in FAST and "sharded" in BY_NAME[c].paths]


def run_worker(names):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "differential.sharded_worker", *names], env=env,
                          cwd=TESTS, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fast_report():
    return run_worker(FAST)


@pytest.fixture(scope="module")
def full_report():
    return run_worker(FULL)


@pytest.mark.parametrize("case", cases(FAST, path="sharded", fast=True))
def test_sharded_step_fast(fast_report, case):
    assert fast_report[case.name] is None, fast_report[case.name]


@verify
@pytest.mark.xdist_group("sharded-8-devices")  # one worker runs the one subprocess (make verify's -n 2)
@pytest.mark.parametrize("case", cases(FULL, path="sharded"))
def test_sharded_step(full_report, case):
    assert full_report[case.name] is None, full_report[case.name]
