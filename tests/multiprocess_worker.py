"""One of two processes of test_multiprocess.py: ``python multiprocess_worker.py ID PORT OUT``.

Joins a 2-process JAX runtime on loopback (CPU collectives over gloo), holds its half of the rows
(unequal halves), fits the mixture sharded over both processes' devices, and process 0 writes
the result to OUT (.npz).
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
    if process_id == 0:
        np.savez(out, weights=res.params.weights, means=res.params.means,
                 covariances=res.params.covariances, objective=res.objective,
                 n_iter=res.restarts.n_iter, status=res.restarts.status, rows=xs.shape[0],
                 devices=jax.device_count())
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
