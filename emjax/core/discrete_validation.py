"""Host-side checks of discrete data (counts, binary vectors, categories), run before tracing.

Every error names the argument, what is wrong, how many values and the first offending index
and value.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .tree import is_traced
from .validation import (
    as_float_array, check_finite, check_ndim, check_positive_int, check_probabilities,
)


def _first(bad, arr, name: str, what: str) -> None:
    """Raises ``ValueError`` when any entry of ``bad`` is set, naming the first one."""
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = index[0] if len(index) == 1 else index
        raise ValueError(f"{name} must hold {what}; {int(bad.sum())} value(s) do not, the first "
                         f"at index {where} ({arr[index].item()!r}).")


def _as_float(data, name: str, hint: str, ndim: int = 2):
    x = as_float_array(data, name)
    check_ndim(x, name, ndim, hint)
    if 0 in x.shape:
        raise ValueError(f"{name} must not be empty; got shape {x.shape}.")
    check_finite(x, name)
    return x


def as_count_array(data, name: str = "data", ndim: int = 2):
    """Non-negative integer counts (``(n, d)`` by default) as a float array (dtype rules of
    :func:`emjax.core.validation.as_float_array`); negative or fractional values raise."""
    hint = " Pass an (n_rows, n_features) array of counts: x.reshape(1, -1) for one row." \
        if ndim == 2 else " Pass an array of counts."
    x = _as_float(data, name, hint, ndim)
    if not is_traced(x):
        arr = np.asarray(x)
        _first((arr < 0) | (arr != np.round(arr)), arr, name, "non-negative integer counts")
    return x


def as_binary_array(data, name: str = "data"):
    """``(n, d)`` values in {0, 1} as a float array; anything else raises."""
    x = _as_float(data, name, " Pass an (n_rows, n_features) array of 0/1 values: x.reshape(1, -1) "
                  "for one row.")
    if not is_traced(x):
        arr = np.asarray(x)
        _first((arr != 0) & (arr != 1), arr, name, "binary values (0 or 1)")
    return x


def as_category_array(data, n_categories: tuple, name: str = "data", allow_missing: bool = True):
    """``(n, f)`` category codes as int32: feature ``j`` in ``0..n_categories[j]-1``, or -1
    (missing) when ``allow_missing``; anything else raises, naming the feature."""
    if is_traced(data):
        return jnp.asarray(data, jnp.int32)
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold integer category codes; got dtype {arr.dtype}.")
    check_ndim(arr, name, 2, " Pass an (n_rows, n_features) array of category codes: "
               "x.reshape(1, -1) for one row.")
    if arr.shape[0] == 0 or arr.shape[1] != len(n_categories):
        raise ValueError(f"{name} must have at least one row and {len(n_categories)} columns "
                         f"(one per entry of n_categories); got shape {arr.shape}.")
    check_finite(arr, name)
    _first(arr != np.round(arr), arr, name, "integer category codes")
    low = -1 if allow_missing else 0
    high = np.asarray(n_categories)[None, :]
    bad = (arr < low) | (arr >= high)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        allowed = f"-1 (missing) or 0..{n_categories[col] - 1}" if allow_missing else \
            f"0..{n_categories[col] - 1}"
        value = arr[row, col].item()
        raise ValueError(f"{name} has {int(bad.sum())} category code(s) out of range; the first "
                         f"at index ({row}, {col}) is {value!r}, but feature {col} allows {allowed}.")
    return jnp.asarray(arr.astype(np.int32))


def check_fold_in(params, corpus, n_topics: int, n_iter) -> None:
    """Host-side checks of :meth:`emjax.PLSA.transform`'s inputs: ``n_iter`` a positive integer,
    ``params.topic_word`` ``(n_topics, n_words)`` rows of probabilities, with the corpus's
    vocabulary size (concrete parameters only)."""
    check_positive_int(n_iter, "n_iter")
    if is_traced(params):
        return
    topic_word = np.asarray(params.topic_word)
    if topic_word.ndim != 2 or topic_word.shape[0] != n_topics:
        raise ValueError(f"params.topic_word must have shape (n_topics={n_topics}, n_words); got "
                         f"{topic_word.shape}.")
    if corpus.n_words != topic_word.shape[1]:
        raise ValueError(f"data has {corpus.n_words} words (columns) but the model was fitted "
                         f"with {topic_word.shape[1]}.")
    check_probabilities(topic_word, "params.topic_word")
