"""One of two processes of test_multiprocess.py: ``python multiprocess_worker.py ID PORT OUT``.

Joins a 2-process JAX runtime on loopback (CPU collectives over gloo), holds its half of the rows
(unequal halves), fits the mixture sharded over both processes' devices, then a Gaussian HMM
whose rows are sequences (3 in process 0, 2 in process 1), and process 0 writes the results to
OUT (.npz).
"""
import sys

import jax
import numpy as np
from jax.sharding import AxisType

import emjax

N, SPLIT = 301, 160  # process 0 holds rows [0, 160), process 1 rows [160, 301)


def data():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 5.0]])
    return centres[rng.integers(3, size=N)] + rng.normal(size=(N, 2))


def start():
    """Two restarts' starting parameters, the same in every process."""
    x = data()
    means = np.stack([x[[0, 1, 2]], x[[3, 4, 5]]])
    return emjax.GMMParams(np.full((2, 3), 1 / 3), means, np.tile(np.eye(2), (2, 3, 1, 1)))


HMM_LENGTHS = np.array([12, 7, 10, 12, 5])  # process 0 holds sequences 0-2, process 1 3-4


def hmm_data():
    """Five sequences that switch between two levels, and one start (the same in every process)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 12, 2)) + 4.0 * (rng.random((5, 12, 1)) < 0.5)
    start = emjax.HMMParams(np.array([0.5, 0.5]), np.array([[0.8, 0.2], [0.3, 0.7]]),
                            emjax.GaussianEmissionParams(np.array([[0.5, 0.0], [3.0, 3.5]]),
                                                         np.tile(np.eye(2), (2, 1, 1))))
    return x, jax.tree_util.tree_map(lambda a: a[None], start)


def main(process_id, port, out):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_enable_x64", True)
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=process_id)
    mesh = jax.make_mesh((2,), ("data",), axis_types=(AxisType.Auto,))
    x = data()
    mine = x[:SPLIT] if process_id == 0 else x[SPLIT:]
    xs, w = emjax.shard(mine, mesh)
    res = emjax.fit(emjax.GaussianMixture(3), xs, jax.random.key(0), weights=w, n_init=2,
                    init_params=start(), max_iter=30, tol=1e-8, throw=False)
    x, hmm_start = hmm_data()
    part = slice(0, 3) if process_id == 0 else slice(3, 5)
    seqs, w = emjax.shard((x[part], HMM_LENGTHS[part]), mesh, model=emjax.GaussianHMM(2))
    hmm = emjax.fit(emjax.GaussianHMM(2), seqs, jax.random.key(0), weights=w, init_params=hmm_start,
                    max_iter=30, tol=1e-8, throw=False)
    if process_id == 0:
        np.savez(out, weights=res.params.weights, means=res.params.means,
                 covariances=res.params.covariances, objective=res.objective,
                 n_iter=res.restarts.n_iter, status=res.restarts.status, rows=xs.shape[0],
                 devices=jax.device_count(), hmm_sequences=seqs.x.shape[0],
                 hmm_params=np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(hmm.params)]),
                 hmm_objective=hmm.objective, hmm_n_iter=hmm.n_iter)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
