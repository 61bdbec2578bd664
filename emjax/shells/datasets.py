"""Small datasets for demos and tests (host-side, NumPy out)."""
from __future__ import annotations

import importlib.resources

import jax
import numpy as np


def load_old_faithful() -> np.ndarray:
    """Old Faithful geyser eruptions: ``(272, 2)`` float64 array of eruption duration and waiting
    time to the next eruption, both in minutes (R's ``datasets::faithful``)."""
    path = importlib.resources.files("emjax.shells") / "data" / "old_faithful.csv"
    rows = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return np.loadtxt(rows[1:], delimiter=",", dtype=np.float64)


def make_mixture(seed, n: int, n_components: int = 4, n_features: int = 2,
                 separation: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` draws from a random Gaussian mixture whose clusters overlap a little.

    Means are spread evenly (with jitter) on a ring in the first two features, neighbours
    ``separation`` apart in units of a unit-scale cluster, plus a random offset in further
    features. Each covariance is a random rotation of axis scales drawn
    from ``[0.4, 1.3]``; weights are Dirichlet(5) so no cluster is tiny.

    Args:
        seed: an ``int``, a ``numpy.random.Generator`` or a JAX PRNG key (its key data seed NumPy).
        n: number of rows.
        n_components: number of clusters.
        n_features: dimension ``d >= 2``.
        separation: distance between neighbouring means.

    Returns:
        ``(X, labels)``: ``(n, d)`` float64 points and ``(n,)`` int cluster labels.
    """
    if n_features < 2:
        raise ValueError(f"n_features must be >= 2; got {n_features}.")
    rng = np.random.default_rng(_numpy_seed(seed))
    k, d = n_components, n_features
    angle = 2 * np.pi * (np.arange(k) + rng.uniform(-0.15, 0.15, k)) / k
    radius = separation / (2 * np.sin(np.pi / k)) if k > 1 else 0.0
    means = np.zeros((k, d))
    means[:, 0], means[:, 1] = radius * np.cos(angle), radius * np.sin(angle)
    means[:, 2:] = rng.normal(0.0, separation / 2, (k, d - 2))
    rotations = np.linalg.qr(rng.normal(size=(k, d, d)))[0]
    chol = rotations * rng.uniform(0.4, 1.3, (k, 1, d))
    weights = rng.dirichlet(np.full(k, 5.0))
    labels = rng.choice(k, size=n, p=weights)
    noise = np.einsum("nde,ne->nd", chol[labels], rng.standard_normal((n, d)))
    return means[labels] + noise, labels


def _numpy_seed(seed):
    """A NumPy seed from ``seed``: a JAX key becomes its raw ``uint32`` words."""
    if isinstance(seed, (int, np.integer, np.random.Generator)):
        return seed
    if jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key):
        seed = jax.random.key_data(seed)
    return np.asarray(seed).ravel()
