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
from .xla_options import jit


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


@jit
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
    check_positive_int(max_iter, "max_iter")
    check_positive_int(n_init, "n_init")
    check_positive_int(chunk_size, "chunk_size", optional=True)
    if not is_traced(tol):
        t = np.asarray(tol) if isinstance(tol, (numbers.Real, np.ndarray, jax.Array)) else None
        if t is None or t.dtype.kind not in "iuf" or t.shape != () or not np.isfinite(t) or t < 0:
            raise ValueError(f"tol must be a finite non-negative number; got {tol!r}.")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_positive_int(value) -> bool:
    """``value`` is a Python/NumPy integer >= 1 (not a bool)."""
    return _is_int(value) and value >= 1


def check_positive_int(value, name: str, *, optional: bool = False) -> None:
    """Raises unless :func:`is_positive_int` (or, with ``optional``, ``value`` is None)."""
    if not (is_positive_int(value) or (optional and value is None)):
        raise ValueError(f"{name} must be a positive integer{' or None' if optional else ''}; "
                         f"got {value!r}.")


def check_nonnegative_number(value, name: str) -> None:
    """``value`` is a finite real number >= 0."""
    if not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")


def check_model(model, call: str) -> None:
    """Refuses a first argument that is not a model (e.g. ``fit(X, model, key)``); ``call`` is the
    expected signature, e.g. "fit(model, data, key, ...)"."""
    if not callable(getattr(model, "e_step", None)):
        raise TypeError(f"the first argument must be a model such as emjax.GaussianMixture(2) (see "
                        f"emjax.core.model); got {type(model).__name__}. The call is {call}.")


def require_method(obj, name: str, purpose: str) -> None:
    """Refuses, before anything is traced, an ``obj`` (a model, an emission) without the optional
    method ``name`` that ``purpose`` needs (TypeError naming both)."""
    if not callable(getattr(obj, name, None)):
        raise TypeError(f"{type(obj).__name__} does not define {name}, which {purpose} needs.")


def check_key(key, name: str = "key", *, optional: bool = False):
    """``key`` as one PRNG key: a typed key (``jax.random.key``), a raw ``uint32`` ``(2,)`` key
    (``jax.random.PRNGKey``), or an integer seed, which becomes ``jax.random.key(seed)``. With
    ``optional`` (starting parameters given, so no key is drawn from), None passes."""
    if key is None and optional:
        return None
    if _is_int(key):
        return jax.random.key(int(key))
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    if dtype is not None and (isinstance(key, (np.ndarray, jax.Array)) or is_traced(key)):
        typed = jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
        if typed or (dtype == np.uint32 and shape[-1:] == (2,)):
            if tuple(shape) == (() if typed else (2,)):
                return key
            raise TypeError(f"{name} must be a single PRNG key; got a batch of keys of shape "
                            f"{tuple(shape)}. Pass one key: restart r uses fold_in({name}, r).")
        if is_traced(key) and shape == () and jnp.issubdtype(dtype, jnp.integer):
            return jax.random.key(key)  # a traced seed (e.g. vmap over seeds)
    what = "None" if key is None else f"{type(key).__name__}" + (
        f" of dtype {dtype} and shape {tuple(shape)}" if dtype is not None and shape is not None else "")
    raise TypeError(f"{name} must be a PRNG key, e.g. jax.random.key(0), or an integer seed; "
                    f"got {what}.")


def check_init_params_type(init_params) -> None:
    """``fit``'s ``init_params`` holds starting parameters, not the name of a method."""
    if isinstance(init_params, str):
        raise TypeError(f"init_params of fit takes starting parameters with a leading (n_init,) axis "
                        f"(e.g. from emjax.init_restarts), not a method name ({init_params!r}); the "
                        f"initialisation method is the model's field, e.g. "
                        f"GaussianMixture(2, init_params={init_params!r}).")


def prepare_inputs(model, data, weights, *, ones_as_none: bool = False):
    """``(data, weights)`` checked and converted by the model (host-side when concrete;
    :meth:`emjax.core.model.Model.traced_inputs` when traced).

    Data spread over several devices are used as they are (:func:`emjax.shard` checked them
    before placing them); their weights must be given (``shard`` returns them). Without
    ``weights`` every row weighs 1: an ``(n,)`` array of ones, or, with ``ones_as_none``, None,
    for a jitted program that makes its ones itself (:func:`emjax.core.chunking.row_weights`) rather
    than taking n floats as an argument.
    """
    distributed = any(is_distributed(x) for x in jax.tree_util.tree_leaves(data))
    if distributed and weights is None:
        raise ValueError("weights must be given with data sharded over devices: pass the weights "
                         "that emjax.shard returned (padding rows have weight 0).")
    if not is_traced(data) and not distributed:
        data = model.validate(data)
    elif not distributed:
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


def check_param_shapes(params, expected: dict, context: str, hints: dict | None = None) -> None:
    """Every ``params.<name>`` has the shape ``expected[name]`` (:func:`check_param_shape`, with
    ``means`` holding the features on its last axis); ``context`` names the model's settings in
    the message (e.g. "n_components=3, n_features=2"), ``hints[name]`` (optional) is appended."""
    for name, shape in expected.items():
        check_param_shape(getattr(params, name), shape, f"params.{name}", context,
                          features_last=name == "means", hint=(hints or {}).get(name, ""))


def check_param_shape(value, shape: tuple, name: str, context: str, *,
                      features_last: bool = False, hint: str = "") -> None:
    """Raises unless ``value`` has ``shape``: "``name`` must have shape ``shape`` for ``context``;
    got ...". With ``features_last`` (the last axis counts the data's features), a value that
    differs only there is reported first as data and parameters with different feature counts."""
    got = tuple(np.shape(value))
    if got == tuple(shape):
        return
    lead = feature_mismatch(shape[-1], got[-1]) if (
        features_last and len(got) == len(shape) and got[:-1] == tuple(shape[:-1])) else ""
    raise ValueError(f"{lead}{name} must have shape {tuple(shape)} for {context}; got {got}.{hint}")


def feature_mismatch(n_data: int, n_params: int) -> str:
    """Start of the message for data whose feature count differs from the parameters'."""
    return f"data has {n_data} feature(s) but the parameters were fitted on {n_params}: "


#: How far user-given probabilities (mixture weights, HMM rows) may be from summing to 1.
SUM_TOLERANCE = 1e-4


def check_probabilities(p, name: str, *, normalized: bool = True, row_hint: str = "") -> None:
    """Host-side: ``p`` finite, non-negative and, when ``normalized``, summing to 1 over its last
    axis (within :data:`SUM_TOLERANCE`); a 1-D ``p`` is one distribution (e.g. mixture weights).
    Errors name ``name``, how many entries fail and the first (index and value); ``row_hint``
    (e.g. what indexes the rows of a table) is appended to a row-sum error."""
    p = np.asarray(p, np.float64)
    _check_entries(~np.isfinite(p), p, name, "finite")
    _check_entries(p < 0, p, name, "non-negative")
    if not normalized:
        return
    sums = p.sum(axis=-1)
    bad = np.abs(sums - 1) > SUM_TOLERANCE
    if bad.any():
        if p.ndim == 1:
            raise ValueError(f"{name} must sum to 1; it sums to {float(sums):.6g}.")
        row = _index(np.argwhere(bad)[0])
        count = int(bad.sum())
        raise ValueError(f"{name}: every row must sum to 1; row {row} sums to {sums[row]:.6g} "
                         f"({count} such row{'' if count == 1 else 's'}).{row_hint}")


def _check_entries(bad, p, name: str, what: str) -> None:
    """Raises "``name`` must be ``what``" naming the count and the first entry where ``bad``."""
    if bad.any():
        i = _index(np.argwhere(bad)[0])
        count = int(bad.sum())
        raise ValueError(f"{name} must be {what}; entry {i} is {p[i]:.6g} ({count} such "
                         f"entr{'y' if count == 1 else 'ies'}).")


def _index(i):
    """A tuple index as printed in messages (a bare int in one dimension)."""
    i = tuple(int(j) for j in i)
    return i[0] if len(i) == 1 else i


def checked_post_fit_data(model, params, data, *, validate=None):
    """``data`` for a method used after a fit (``log_prob``, ``predict``, ...): concrete inputs
    are checked and converted as one chunk of ``fit``'s data (``model.validate_chunk``, or
    ``validate``), and ``params`` against them (``model.validate_params``). Inside ``jit``,
    ``vmap`` or ``grad`` (any input traced), and for data spread over devices, nothing is checked:
    the engine calls these methods while tracing, at no cost."""
    if is_traced(params, data) or any(is_distributed(x) for x in jax.tree_util.tree_leaves(data)):
        return data
    data = (validate or model.validate_chunk)(data)
    model.validate_params(params, data)
    return data
