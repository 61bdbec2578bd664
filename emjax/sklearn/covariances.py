"""scikit-learn's covariance attributes on the host (NumPy), in its four shapes.

Computed once per fit from the fitted covariances (the engine's own Cholesky helpers are JAX
functions: called eagerly they would compile for every new shape, seconds for a few small arrays).

``full``: ``(k, d, d)``; ``tied``: ``(d, d)``; ``diag``: ``(k, d)``; ``spherical``: ``(k,)``.
The precision Cholesky factor is scikit-learn's: the upper-triangular ``U`` with
:math:`\\Sigma^{-1} = U U^\\top`, i.e. :math:`U = L^{-\\top}` for :math:`\\Sigma = L L^\\top`.
"""
from __future__ import annotations

import numpy as np

from ..components.covariance_types import lookup


def _transposed(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def precisions_cholesky(cov: np.ndarray, covariance_type: str) -> np.ndarray:
    """``precisions_cholesky_`` of covariances ``cov``.

    All matrices at once through NumPy's batched inverse of the Cholesky factors: scipy's
    per-matrix triangular solve (scikit-learn's) takes milliseconds per 13 x 13 matrix with
    multi-threaded OpenBLAS on a busy machine, where this takes microseconds."""
    if lookup(covariance_type).matrix:
        return np.triu(_transposed(np.linalg.inv(np.linalg.cholesky(cov))))
    return 1.0 / np.sqrt(cov)


def precisions_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """``precisions_`` (:math:`U U^\\top`) from ``precisions_cholesky_``."""
    if lookup(covariance_type).matrix:
        return prec_chol @ _transposed(prec_chol)
    return prec_chol**2


def covariances_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """Covariances of given precisions (``precisions_init``), assumed checked."""
    if lookup(covariance_type).matrix:
        return np.linalg.inv((precisions + _transposed(precisions)) / 2)
    return 1.0 / precisions


def check_precisions(precisions, covariance_type: str, k: int, d: int, name: str) -> np.ndarray:
    """``precisions`` as a float64 array of scikit-learn's shape for ``covariance_type``,
    symmetric positive definite (full/tied) or positive (diag/spherical); errors name ``name``."""
    kind, p = lookup(covariance_type), np.asarray(precisions, dtype=np.float64)
    shape = kind.shape(k, d)
    if p.shape != shape:
        raise ValueError(f"{name} must have shape {shape} for covariance_type={covariance_type!r}, "
                         f"n_components={k}, n_features={d}; got {p.shape}.")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} must be finite.")
    if not kind.matrix:
        if (p <= 0).any():
            raise ValueError(f"{name} must be positive; entry {np.argwhere(p <= 0)[0].tolist()} is "
                             f"{p[tuple(np.argwhere(p <= 0)[0])]:.6g}.")
        return p
    for i, matrix in enumerate(p.reshape(-1, d, d)):
        where = "" if kind.shared else f"[{i}]"
        if not np.allclose(matrix, matrix.T, rtol=1e-10, atol=0):
            raise ValueError(f"{name}{where} must be symmetric.")
        smallest = float(np.linalg.eigvalsh(matrix)[0])
        if smallest <= 0:
            raise ValueError(f"{name}{where} must be positive definite; its smallest eigenvalue "
                             f"is {smallest:.3g}.")
    return p
