"""Host-side checks and storage of :class:`BayesianGaussianMixture`'s prior settings.

Array-valued priors are stored as nested tuples so the model stays hashable; every error names
the setting, what is wrong and the allowed values.
"""
from __future__ import annotations

import numbers

import jax.numpy as jnp
import numpy as np

from ..components import gaussian as g
from ..components import mixture_weights as mw
from ..components.covariance_types import lookup
from ..core.validation import check_positive_int
from .gaussian_mixture import INIT_METHODS


def prior_tuple(value, name: str):
    """``value`` as a float or nested tuple of floats (hashable); None stays None."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=float) if not isinstance(value, str) else None
    if arr is None or arr.dtype == object:
        raise ValueError(f"{name} must be numeric; got {value!r}.")
    if not np.isfinite(arr).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite; got {arr[first] if first else arr} at index {first}.")
    return float(arr) if arr.ndim == 0 else _nested_tuple(arr)


def _nested_tuple(arr):
    return tuple(_nested_tuple(a) for a in arr) if arr.ndim > 1 else tuple(float(a) for a in arr)


def _positive_number(value, name: str) -> None:
    if value is None:
        return
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 (or None for the default); got {value!r}.")


def validate_static(model) -> None:
    """Checks of the settings that do not depend on the data."""
    check_positive_int(model.n_components, "n_components")
    for name, allowed in (("covariance_type", g.COVARIANCE_TYPES), ("init_params", INIT_METHODS),
                          ("weight_concentration_prior_type", mw.PRIOR_TYPES)):
        if getattr(model, name) not in allowed:
            raise ValueError(f"{name} must be one of {allowed}; got {getattr(model, name)!r}.")
    _positive_number(model.weight_concentration_prior, "weight_concentration_prior")
    _positive_number(model.mean_precision_prior, "mean_precision_prior")
    dof = model.degrees_of_freedom_prior
    if dof is not None and (not isinstance(dof, numbers.Real) or isinstance(dof, bool)
                            or not np.isfinite(dof)):
        raise ValueError("degrees_of_freedom_prior must be a finite number > n_features - 1; "
                         f"got {dof!r}.")
    if model.mean_prior is not None and np.ndim(model.mean_prior) != 1:
        raise ValueError(f"mean_prior must be a vector of length n_features; got shape "
                         f"{np.shape(model.mean_prior)}.")
    _check_covariance_prior(model.covariance_prior, model.covariance_type)


def _check_covariance_prior(cov, covariance_type: str) -> None:
    if cov is None:
        return
    arr = np.asarray(cov)
    expected = lookup(covariance_type).component_ndim
    if arr.ndim != expected or (expected == 2 and arr.shape[0] != arr.shape[1]):
        shape = {2: "(n_features, n_features)", 1: "(n_features,)", 0: "() (a number)"}[expected]
        raise ValueError(f"covariance_prior for covariance_type={covariance_type!r} must have shape "
                         f"{shape}; got {arr.shape}.")
    if expected < 2:
        if (arr <= 0).any():
            i = int(np.argmax(arr.ravel() <= 0))
            raise ValueError(f"covariance_prior must be positive; got {arr.ravel()[i]} at index {i}.")
        return
    if not np.allclose(arr, arr.T, rtol=1e-10, atol=0):
        raise ValueError("covariance_prior must be symmetric; got a matrix that differs from its "
                         f"transpose by {np.abs(arr - arr.T).max():.3g}.")
    smallest = float(np.linalg.eigvalsh(arr)[0])
    if smallest <= 0:
        raise ValueError("covariance_prior must be positive definite; its smallest eigenvalue is "
                         f"{smallest:.3g}.")


def check_prior_shapes(model, d: int) -> None:
    """Checks of the settings against the data's number of features ``d``."""
    if model.mean_prior is not None and len(model.mean_prior) != d:
        raise ValueError(f"mean_prior must have length n_features={d}; got {len(model.mean_prior)}.")
    cov = model.covariance_prior
    if cov is not None and np.ndim(cov) > 0 and np.shape(cov)[0] != d:
        raise ValueError(f"covariance_prior must have {d} rows (n_features); got shape {np.shape(cov)}.")
    dof = model.degrees_of_freedom_prior
    if dof is not None and dof <= d - 1:
        raise ValueError(f"degrees_of_freedom_prior must be > n_features - 1 = {d - 1}; got {dof!r}.")


def resolved_priors(model, dtype):
    """``(covariance_prior, mean_prior)`` as arrays of ``dtype``, None where defaulted."""
    as_array = lambda v: None if v is None else jnp.asarray(v, dtype)
    return as_array(model.covariance_prior), as_array(model.mean_prior)
