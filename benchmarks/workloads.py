"""Benchmark workloads and their data: the same NumPy arrays (fixed seed) go to every library.

Data are draws from a Gaussian mixture whose clusters overlap but are separable: means are spread
so that neighbouring clusters sit about ``SEPARATION`` cluster-widths apart, covariances are
random rotations (or, for diagonal workloads, axis-aligned) of scales in ``[0.5, 1.5]``, and the
weights are Dirichlet(5). Rows are generated in blocks straight into a float32 array, so even
W6's 10 million rows never exist in float64.
"""
from __future__ import annotations

import dataclasses

import numpy as np

SEED = 20240601
HMM_LIBRARIES = ("emjax", "hmmlearn", "hmmlearn_scaling", "dynamax")
SEPARATION = 5.0
BLOCK_ROWS = 1 << 18  # float64 temporaries of a block stay small next to W6's data


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark problem. ``n_datasets > 1`` means independent datasets (vmap over them)."""

    name: str
    title: str
    n: int
    d: int
    k: int
    covariance_type: str
    n_init: int
    max_iter: int
    n_datasets: int = 1
    memory: bool = False  # W6: peak resident memory in a fresh process per library
    covariance_types: tuple = ()  # W6: one memory run per covariance type
    n_steps: int = 0  # W4: a Gaussian HMM on n sequences of n_steps steps (0: a mixture workload)
    libraries: tuple = ()  # libraries that can run it (empty: the mixture libraries)


def workloads(scale: str) -> dict[str, Workload]:
    """The workloads of the issue at ``scale``: "full" (the issue's sizes), "small" (a smoke run
    of a few seconds) or "gpu" (W1 with 10,000 restarts, W2 with N = 10M)."""
    if scale not in ("small", "full", "gpu"):
        raise ValueError(f"scale must be 'small', 'full' or 'gpu'; got {scale!r}.")
    full = {
        "W1": Workload("W1", "many restarts", 5_000, 2, 8, "full", 256, 100),
        "W2": Workload("W2", "big N", 500_000, 16, 16, "full", 1, 20),
        "W3": Workload("W3", "high-dim diagonal", 100_000, 64, 32, "diag", 1, 20),
        "W4": Workload("W4", "Gaussian HMM", 64, 4, 8, "full", 1, 20, n_steps=1_000,
                       libraries=HMM_LIBRARIES),
        "W4R": Workload("W4R", "Gaussian HMM, many restarts", 64, 4, 8, "full", 256, 20,
                        n_steps=1_000, libraries=("emjax",)),
        "W5": Workload("W5", "many datasets", 200, 2, 3, "full", 1, 100, n_datasets=2_000),
        "W6": Workload("W6", "memory", 10_000_000, 8, 16, "diag", 1, 5, memory=True,
                       covariance_types=("diag", "full")),
    }
    if scale == "full":
        return full
    if scale == "gpu":
        return {**full,
                "W1": dataclasses.replace(full["W1"], n_init=10_000),
                "W2": dataclasses.replace(full["W2"], n=10_000_000)}
    return {
        "W1": dataclasses.replace(full["W1"], n=500, n_init=8, max_iter=10),
        "W2": dataclasses.replace(full["W2"], n=2_000, d=4, k=4, max_iter=5),
        "W3": dataclasses.replace(full["W3"], n=2_000, d=8, k=4, max_iter=5),
        "W4": dataclasses.replace(full["W4"], n=8, n_steps=200, k=3, max_iter=5),
        "W4R": dataclasses.replace(full["W4R"], n=8, n_steps=200, k=3, n_init=8, max_iter=5),
        "W5": dataclasses.replace(full["W5"], n_datasets=20, max_iter=10),
        "W6": dataclasses.replace(full["W6"], n=20_000, max_iter=2),
    }


def mixture(rng: np.random.Generator, k: int, d: int, axis_aligned: bool):
    """Random mixture parameters ``(weights, means, chol)`` with ``chol @ chol.T = covariance``."""
    # Pairwise distance of two N(0, s^2 I_d) means is about s * sqrt(2 d): choose s so that it
    # is about SEPARATION for any d; for d = 2 place the means on a jittered ring instead.
    if d == 2:
        angle = 2 * np.pi * (np.arange(k) + rng.uniform(-0.15, 0.15, k)) / k
        radius = SEPARATION / (2 * np.sin(np.pi / k)) if k > 1 else 0.0
        means = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    else:
        means = rng.normal(0.0, SEPARATION / np.sqrt(2 * d), (k, d))
    scales = rng.uniform(0.5, 1.5, (k, 1, d))
    if axis_aligned:
        chol = np.broadcast_to(np.eye(d), (k, d, d)) * scales
    else:
        chol = np.linalg.qr(rng.normal(size=(k, d, d)))[0] * scales
    weights = rng.dirichlet(np.full(k, 5.0))
    return weights, means + 10.0, chol  # an offset of 10: libraries must cope with uncentred data


def sample(seed, n: int, k: int, d: int, axis_aligned: bool = False,
           dtype=np.float32) -> np.ndarray:
    """``(n, d)`` draws of a random mixture, generated block by block into one ``dtype`` array."""
    rng = np.random.default_rng(seed)
    weights, means, chol = mixture(rng, k, d, axis_aligned)
    out = np.empty((n, d), dtype)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        labels = rng.choice(k, size=stop - start, p=weights)
        z = rng.standard_normal((stop - start, d))
        block = np.empty((stop - start, d))
        for j in range(k):  # per component: never materialise (rows, d, d)
            rows = labels == j
            block[rows] = means[j] + z[rows] @ chol[j].T
        out[start:stop] = block
    return out


def data_for(w: Workload, covariance_type: str | None = None) -> np.ndarray:
    """The workload's data: ``(n, d)``, or ``(n_datasets, n, d)`` for many datasets."""
    axis_aligned = (covariance_type or w.covariance_type) == "diag"
    if w.n_datasets > 1:
        return np.stack([sample((SEED, int(w.name[1:]), i), w.n, w.k, w.d, axis_aligned) for i in range(w.n_datasets)])
    return sample((SEED, int(w.name[1:])), w.n, w.k, w.d, axis_aligned)


def hmm_data_for(w: Workload):
    """W4's data: ``(x (n, n_steps, d) float32, lengths (n,))``, sequences of full length drawn
    from a random sticky HMM whose states emit the mixture of :func:`mixture` (same seed for W4
    and W4R)."""
    rng = np.random.default_rng((SEED, 4))
    _, means, chol = mixture(rng, w.k, w.d, axis_aligned=False)
    trans = rng.dirichlet(np.ones(w.k), size=w.k) * 0.2 + 0.8 * np.eye(w.k)
    states = np.empty((w.n, w.n_steps), int)
    states[:, 0] = rng.integers(w.k, size=w.n)
    cumulative = np.cumsum(trans, axis=1)
    for t in range(1, w.n_steps):  # vectorised over sequences
        u = rng.uniform(size=w.n)[:, None]
        states[:, t] = np.minimum((u > cumulative[states[:, t - 1]]).sum(axis=1), w.k - 1)
    z = rng.standard_normal((w.n, w.n_steps, w.d))
    x = means[states] + np.einsum("stde,ste->std", chol[states], z)
    return x.astype(np.float32), np.full(w.n, w.n_steps, np.int32)
