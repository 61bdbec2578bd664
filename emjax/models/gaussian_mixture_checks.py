"""Host-side checks of ``GaussianMixture``'s data and parameters (NumPy, before anything is
traced): rows, missing values, parameter shapes, probabilities and positive definiteness."""
from __future__ import annotations

import numpy as np

from ..components import gaussian as g
from ..components.covariance_types import lookup
from ..core.validation import (
    as_float_array, check_finite, check_ndim, check_param_shapes, check_probabilities,
)


def check_rows(data, allow_nan: bool):
    """``data`` as a float array ``(n, d)``, ``n, d >= 1``, finite (NaN allowed with ``allow_nan``)."""
    x = as_float_array(data, "data")
    check_ndim(x, "data", 2, " Pass an (n_samples, n_features) array: x.reshape(-1, 1) for one "
               "feature, x.reshape(1, -1) for one sample.")
    n, d = x.shape
    if n == 0 or d == 0:
        raise ValueError(f"data must have at least one sample and one feature; got shape {(n, d)}.")
    if allow_nan:
        arr = np.asarray(x)
        check_finite(np.where(np.isnan(arr), 0, arr), "data")  # inf is still refused
    else:
        check_finite(x, "data", nan_hint=" To fit data with missing values marked by NaN, pass "
                     "GaussianMixture(..., missing='marginalize').")
    return x


def check_params(params, k: int, d: int, covariance_type: str) -> None:
    """Shapes of ``params`` (a ``GMMParams``) for ``k`` components of ``d`` features, weights on
    the simplex, finite means, covariances of ``covariance_type`` positive definite."""
    expected = {"weights": (k,), "means": (k, d), "covariances": g.covariance_shape(covariance_type, k, d)}
    other = [t for t in g.COVARIANCE_TYPES if np.shape(params.covariances) == g.covariance_shape(t, k, d)]
    hint = {"covariances": f" That is the shape of covariance_type={other[0]!r}: pass the "
            f"parameters of a {covariance_type!r} model." if other else ""}
    check_param_shapes(params, expected, f"n_components={k}, n_features={d}, "
                       f"covariance_type={covariance_type!r}", hint)
    check_probabilities(params.weights, "params.weights")
    check_finite(np.asarray(params.means), "params.means")
    check_positive_definite(np.asarray(params.covariances, np.float64), covariance_type)


def check_enough_observed(x: np.ndarray, n_components: int) -> None:
    """Every feature observed somewhere; at least ``n_components`` rows with an observed value."""
    obs = ~np.isnan(x)
    empty = np.flatnonzero(~obs.any(axis=0))
    if empty.size:
        raise ValueError(f"data column {int(empty[0])} has no observed value ({empty.size} such "
                         "column(s)); drop it before fitting.")
    rows = int(obs.any(axis=1).sum())
    if rows < n_components:
        raise ValueError(f"data has {rows} row(s) with an observed value; need at least "
                         f"n_components={n_components}.")


def check_positive_definite(cov: np.ndarray, covariance_type: str) -> None:
    """Host-side: finite covariances, positive definite (full/tied) or positive (diag/spherical)."""
    check_finite(cov, "params.covariances")
    kind = lookup(covariance_type)
    if kind.matrix:
        stack = cov.reshape((-1,) + cov.shape[-2:])
        for i, c in enumerate(stack):
            try:
                np.linalg.cholesky((c + c.T) / 2)
            except np.linalg.LinAlgError:
                where = "" if kind.shared else f"[{i}]"
                raise ValueError(f"params.covariances{where} must be positive definite; its smallest "
                                 f"eigenvalue is {np.linalg.eigvalsh((c + c.T) / 2)[0]:.3g}.") from None
    elif (cov <= 0).any():
        i = tuple(int(j) for j in np.argwhere(cov <= 0)[0])
        raise ValueError(f"params.covariances must be positive ({covariance_type} variances); entry "
                         f"{i[0] if len(i) == 1 else i} is {cov[i]:.6g}.")
