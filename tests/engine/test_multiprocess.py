"""Two processes on loopback (``jax.distributed``, CPU collectives over gloo), each holding part
of the rows, reach the parameters of one process fitting all rows (float64): a Gaussian mixture
and a Gaussian HMM whose rows are sequences of different lengths."""
import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import emjax

pytestmark = pytest.mark.slow  # starts Python processes: make test-slow

WORKER = Path(__file__).parent / "multiprocess_worker.py"


def load_worker():
    spec = importlib.util.spec_from_file_location("multiprocess_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process(x64, tmp_path):
    out, port = tmp_path / "result.npz", str(free_port())
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="",
               PYTHONPATH=os.pathsep.join([str(WORKER.parents[2]), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(i), port, str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    logs = []
    try:
        worker = load_worker()  # the reference, computed while the two processes start
        want = emjax.fit(emjax.GaussianMixture(3), worker.data(), jax.random.key(0), n_init=2,
                         init_params=worker.start(), max_iter=30, tol=1e-8, throw=False)
        x, hmm_start = worker.hmm_data()
        want_hmm = emjax.fit(emjax.GaussianHMM(2), (x, worker.HMM_LENGTHS), jax.random.key(0),
                             init_params=hmm_start, max_iter=30, tol=1e-8, throw=False)
        for p in procs:
            logs.append(p.communicate(timeout=300)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-2000:] for log in logs)
    got = np.load(out)
    assert int(got["devices"]) == 2 and int(got["rows"]) == 2 * 160  # 141 rows padded to 160
    np.testing.assert_array_equal(got["n_iter"], want.restarts.n_iter)
    np.testing.assert_array_equal(got["status"], want.restarts.status)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_allclose(got[name], getattr(want.params, name), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got["objective"], want.objective, rtol=1e-12)
    assert int(got["hmm_sequences"]) == 2 * 3  # 2 sequences padded to 3
    assert int(got["hmm_n_iter"]) == int(want_hmm.n_iter) > 3
    want_params = np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(want_hmm.params)])
    np.testing.assert_allclose(got["hmm_params"], want_params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got["hmm_objective"], want_hmm.objective, rtol=1e-12)
