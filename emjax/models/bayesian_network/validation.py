"""Host-side checks of a Bayesian network's data (categories) and parameters (CPTs)."""
from __future__ import annotations

import numpy as np

from ...core.validation import check_ndim, check_param_shape, check_probabilities


def _first(mask) -> tuple:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def check_categories(data, cardinalities, latent=()) -> np.ndarray:
    """``data`` as int32 ``(n, V)``: ``-1`` (missing) or a category ``0..c_v-1`` in column ``v``.

    Raises ``ValueError`` naming the first offending entry: non-integer values (fractions, NaN,
    strings), values outside ``-1..c_v-1``, or an observed value of a declared latent variable.
    """
    arr = np.asarray(data)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"data must hold integer categories (-1 for missing); got dtype {arr.dtype}.")
    check_ndim(arr, "data", 2, " Pass an (n_samples, n_variables) array of categories.")
    n, d = arr.shape
    if d != len(cardinalities):
        raise ValueError(f"data must have one column per variable ({len(cardinalities)}); got shape "
                         f"{arr.shape}.")
    if n == 0:
        raise ValueError("data must have at least one row; got shape (0, ...).")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i, v = _first(bad)
            raise ValueError(f"data must hold integer categories (-1 for missing); data[{i}, {v}] = "
                             f"{arr[i, v]} ({int(bad.sum())} non-integer value(s)).")
    arr = arr.astype(np.int64)
    cards = np.asarray(cardinalities)
    bad = (arr < -1) | (arr >= cards)
    if bad.any():
        i, v = _first(bad)
        raise ValueError(f"data[{i}, {v}] = {arr[i, v]} is outside the categories of variable {v}: "
                         f"0..{cards[v] - 1}, or -1 for missing ({int(bad.sum())} such value(s)).")
    for v in latent:
        seen = arr[:, v] != -1
        if seen.any():
            i = int(np.argmax(seen))
            raise ValueError(f"variable {v} is declared latent, so column {v} must be -1 in every "
                             f"row; data[{i}, {v}] = {arr[i, v]}.")
    return arr.astype(np.int32)


def check_tables(tables, shapes, parents) -> None:
    """CPTs of the right shapes (``(*parent cards, c_v)``), finite, >= 0, rows summing to one."""
    if not isinstance(tables, (tuple, list)) or len(tables) != len(shapes):
        raise ValueError(f"params.tables must be a sequence of {len(shapes)} tables, one per "
                         f"variable; got {type(tables).__name__} of length "
                         f"{len(tables) if hasattr(tables, '__len__') else '?'}.")
    for v, (table, shape) in enumerate(zip(tables, shapes)):
        check_param_shape(table, shape, f"params.tables[{v}]",
                          f"the cardinalities of parents {parents[v]}, then of variable {v}")
        check_probabilities(table, f"params.tables[{v}]", row_hint=(
            f" Rows run over the last axis (variable {v}'s categories) and are indexed by the "
            f"values of its parents {parents[v]}."))
