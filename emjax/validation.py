"""Host-side checks of user input, run before anything is traced.

Every error names the argument, what is wrong and where (count and first index). Arrays on an
accelerator (``jax.Array``) are checked there: only a scalar verdict crosses to the host, so a
fit on data that lives on a GPU does not copy the data back and forth. Host memory is checked in
place, in blocks of rows: the checks add no array of the data's size.
"""
from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .tree import float_dtype, is_distributed, is_traced


def as_float_array(x, name: str):
    """``x`` as a JAX floating array: float32/float64 kept, integers and bools converted to the
    default float dtype (float64 under x64), complex and object rejected."""
    if is_traced(x) or (isinstance(x, jax.Array) and x.dtype.kind in "biuf"):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(jnp.result_type(float))
        return x.astype(jnp.float32) if x.dtype == jnp.float16 else x
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise TypeError(f"{name} must be numeric; got an array of dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real; got complex dtype {arr.dtype}.")
    if arr.dtype.kind in "biu":
        arr = arr.astype(jnp.result_type(float))
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    # device_put shares a suitably aligned host buffer with the CPU device instead of copying it
    return jax.device_put(arr)


def check_ndim(x, name: str, ndim: int, hint: str = "") -> None:
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {tuple(x.shape)}.{hint}")


def check_finite(x, name: str, nan_hint: str = "") -> None:
    """Raises when a concrete ``x`` holds NaN or inf, with the count and the first index;
    ``nan_hint`` is appended to the message when there is a NaN (e.g. an option that accepts it).

    Host memory (NumPy arrays, and ``jax.Array`` s on one CPU device, read in place) is checked
    in blocks of rows, so the check allocates no array of the data's size and compiles nothing;
    an array on an accelerator or spread over devices is checked where it lives."""
    if is_traced(x):
        return
    if isinstance(x, jax.Array) and not _in_host_memory(x):
        if bool(_all_finite(x)):
            return
    elif _all_finite_in_blocks(np.asarray(x)):
        return
    arr = np.asarray(x)
    bad = ~np.isfinite(arr)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    kinds = "NaN" if np.isnan(arr).any() else "inf"
    kinds = "NaN or inf" if (np.isnan(arr).any() and np.isinf(arr).any()) else kinds
    hint = nan_hint if np.isnan(arr).any() else ""
    raise ValueError(f"{name} contains {int(bad.sum())} {kinds} value(s); the first at index "
                     f"{first[0] if len(first) == 1 else first}.{hint}")


#: Elements per block of the host-side checks of data and weights (a few hundred kB of
#: booleans).
FINITE_CHECK_BLOCK = 1 << 18


def _in_host_memory(x: jax.Array) -> bool:
    """True for an array on one CPU device: ``np.asarray`` views its buffer without a copy."""
    devices = x.sharding.device_set
    return len(devices) == 1 and next(iter(devices)).platform == "cpu"


def _all_finite_in_blocks(arr: np.ndarray) -> bool:
    """``np.isfinite(arr).all()`` over blocks of rows (no boolean array of ``arr``'s size)."""
    if arr.ndim == 0 or arr.dtype.kind not in "fc":
        return bool(np.isfinite(arr).all())
    rows = max(1, FINITE_CHECK_BLOCK // max(1, arr[:1].size))
    return all(np.isfinite(arr[start:start + rows]).all() for start in range(0, arr.shape[0], rows))


@jax.jit
def _all_finite(x):
    return jnp.all(jnp.isfinite(x))


def check_weights(weights, n: int, dtype):
    """Validated per-row weights ``(n,)`` in ``dtype``; all ones when ``weights`` is None."""
    if weights is None:
        return jnp.ones((n,), dtype)
    if is_traced(weights) or is_distributed(weights):
        return jnp.asarray(weights, dtype)
    w = np.asarray(weights)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"weights must be real numbers; got dtype {w.dtype}.")
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), one per row of data; got {w.shape}.")
    check_finite(w, "weights")
    if (w < 0).any():
        i = int(np.argmax(w < 0))
        raise ValueError(f"weights must be non-negative; {int((w < 0).sum())} are negative, the "
                         f"first at index {i} ({w[i]}).")
    if not (w > 0).any():
        raise ValueError("weights are all zero: no row would count.")
    return jnp.asarray(w, dtype)


def check_fit_options(*, max_iter, tol, chunk_size, n_init=1) -> None:
    """Static options shared by :func:`emjax.em` and :func:`emjax.fit`."""
    for name, value in (("max_iter", max_iter), ("n_init", n_init)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    if chunk_size is not None and (not isinstance(chunk_size, numbers.Integral) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None; got {chunk_size!r}.")
    if not is_traced(tol):
        t = np.asarray(tol)
        if t.shape != () or not np.isfinite(t) or t < 0:
            raise ValueError(f"tol must be a finite non-negative number; got {tol!r}.")


def prepare_inputs(model, data, weights, *, ones_as_none: bool = False):
    """``(data, weights)`` checked and converted by the model (host-side when concrete;
    :meth:`emjax.model.Model.traced_inputs` when traced).

    Data spread over several devices are used as they are (:func:`emjax.shard` checked them
    before placing them); their weights must be given (``shard`` returns them). Without
    ``weights`` every row weighs 1: an ``(n,)`` array of ones, or, with ``ones_as_none``, None,
    for a jitted program that makes its ones itself (:func:`emjax.chunking.row_weights`) rather
    than taking n floats as an argument.
    """
    distributed = any(is_distributed(x) for x in jax.tree_util.tree_leaves(data))
    if distributed and weights is None:
        raise ValueError("weights must be given with data sharded over devices: pass the weights "
                         "that emjax.shard returned (padding rows have weight 0).")
    if not is_traced(data) and not distributed:
        data = model.validate(data)
    elif is_traced(data):
        data, weights = model.traced_inputs(data, weights)
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    dtype = float_dtype(data)
    if weights is None and ones_as_none:
        if not is_traced(data):
            model.validate_weights(np.broadcast_to(np.ones((), dtype), (n,)))  # a view, no n floats
        return data, None
    weights = check_weights(weights, n, dtype)
    if not is_traced(weights) and not is_distributed(weights):
        model.validate_weights(weights)
    return data, weights


def check_enough_rows(weights, n_components: int) -> None:
    """At least ``n_components`` rows of positive weight (a mixture needs one per component)."""
    w = np.asarray(weights)
    positive = sum(int(np.count_nonzero(w[start:start + FINITE_CHECK_BLOCK] > 0))
                   for start in range(0, w.shape[0], FINITE_CHECK_BLOCK))  # no (n,) temporary
    if positive < n_components:
        raise ValueError(f"n_samples={positive} (rows with positive weight) must be >= "
                         f"n_components={n_components}.")


def check_param_shapes(params, expected: dict, context: str) -> None:
    """Every ``params.<name>`` has the shape ``expected[name]``; ``context`` names the model's
    settings in the message (e.g. "n_components=3, n_features=2")."""
    for name, shape in expected.items():
        got = tuple(np.shape(getattr(params, name)))
        if got != shape:
            raise ValueError(f"params.{name} must have shape {shape} for {context}; got {got}.")
