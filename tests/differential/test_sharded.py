"""Every model configuration with its rows sharded over 8 emulated devices: one EM step of ``em``
and of ``fit`` (restarts also split over a second mesh axis) against the float64 reference.

The 8-device runs happen in a subprocess (``sharded_worker.py``, with
``--xla_force_host_platform_device_count=8``) that loops over the cases it is given: one for the
fast slice's cases, one per case in the full grid; this process keeps its single device.
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




@pytest.mark.slow
@pytest.mark.parametrize("case", cases(FAST, path="sharded", fast=True))
def test_sharded_step_fast(fast_report, case):
    assert fast_report[case.name] is None, fast_report[case.name]


@verify
@pytest.mark.parametrize("case", cases(FULL, path="sharded"))
def test_sharded_step(case):
    """One subprocess per case in the full grid: the cases share no compiled program, and the
    cells spread over pytest-xdist's workers (``make verify``)."""
    report = run_worker([case.name])
    assert report[case.name] is None, report[case.name]
