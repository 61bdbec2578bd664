"""Helpers shared by the test modules (one copy each; conftest.py holds fixtures only)."""
import contextlib

import chex
import jax
import numpy as np


def blobs(n=300, d=2, k=3, seed=0, spread=6.0, dtype=np.float32):
    """Well separated Gaussian blobs (NumPy, fixed seed): ``(rows, labels)``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(k, d))
    labels = rng.integers(k, size=n)
    return (centres[labels] + rng.normal(size=(n, d))).astype(dtype), labels


def full_covariances(cov, covariance_type, k, d):
    """(k, d, d) float64 covariances from any of scikit-learn's four covariance shapes."""
    cov = np.asarray(cov, np.float64)
    if covariance_type == "full":
        return cov
    if covariance_type == "tied":
        return np.broadcast_to(cov, (k, d, d))
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(d)


def assert_trees_close(got, want, rtol=1e-5, atol=1e-6):
    """Two pytrees of arrays have the same structure and shapes, and equal leaves up to
    ``|got - want| <= atol + rtol |want|`` (compared in float64, whatever the leaves' dtypes)."""
    as64 = lambda tree: [np.asarray(a, np.float64) for a in jax.tree_util.tree_leaves(tree)]
    chex.assert_trees_all_equal_structs(got, want)
    chex.assert_trees_all_close(as64(got), as64(want), rtol=rtol, atol=atol)



@contextlib.contextmanager
def counting_compiles():
    """A list with one entry per XLA compilation inside the block (JAX's compile events)."""
    from emjax.core.xla_options import BACKEND_COMPILE_EVENT
    compiled = []

    def listen(event, duration, **kwargs):
        if event == BACKEND_COMPILE_EVENT:
            compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield compiled
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
