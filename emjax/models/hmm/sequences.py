"""HMM data: padded sequences with their lengths, their accepted forms, and host-side checks."""
from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

class Sequences(NamedTuple):
    """A batch of sequences: ``x`` ``(s, t, ...)`` padded to ``t`` steps and ``lengths`` ``(s,)``.

    Examples:
        >>> import jax, jax.numpy as jnp, emjax
        >>> truth = emjax.HMMParams(
        ...     initial=jnp.array([0.5, 0.5]), transitions=jnp.array([[0.95, 0.05], [0.05, 0.95]]),
        ...     emission=emjax.GaussianEmissionParams(means=jnp.array([[-2.0], [2.0]]),
        ...                                           covariances=jnp.full((2, 1), 0.25)))
        >>> model = emjax.GaussianHMM(2, covariance_type="diag")
        >>> x, states = model.sample(jax.random.key(0), truth, n_steps=200, n_sequences=3)
        >>> lengths = jnp.array([200, 150, 90])                 # steps past a length are padding
        >>> res = emjax.fit(model, (x, lengths), jax.random.key(1), n_init=2)
        >>> model.predict(res.params, (x, lengths))[2, 90:].tolist() == [-1] * 110
        True
    """

    x: Any
    lengths: Any


def flat_steps(data: Sequences, weights):
    """Steps of all sequences as rows ``(s t, ...)`` and their weights (0 at padded steps)."""
    x = data.x
    s, t = x.shape[:2]
    mask = jnp.arange(t)[None, :] < data.lengths[:, None]
    x = jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 2)), x, jnp.zeros((), x.dtype))
    return x.reshape((s * t,) + x.shape[2:]), (weights[:, None] * mask).reshape(-1)


def time_major_steps(data: Sequences):
    """Steps as rows in time-major order ``(t s, ...)`` (row ``tau s + i`` is step ``tau`` of
    sequence ``i``), padded steps zeroed: the layout of the batched forward-backward."""
    x = jnp.swapaxes(data.x, 0, 1)
    t, s = x.shape[:2]
    mask = jnp.arange(t)[:, None] < data.lengths[None, :]
    x = jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 2)), x, jnp.zeros((), x.dtype))
    return x.reshape((t * s,) + x.shape[2:])


def is_pair(data) -> bool:
    """True for ``(x, lengths)``: a tuple of two (:class:`Sequences` too), or a list of two whose
    first member has three axes and second one (a list of sequences has no 1-D member)."""
    if isinstance(data, tuple):
        return len(data) == 2
    return (isinstance(data, list) and len(data) == 2 and _ndim(data[0]) == 3
            and _ndim(data[1]) == 1)


def _ndim(x) -> int:
    try:
        return np.ndim(x)
    except ValueError:  # ragged
        return -1


def as_sequences(data) -> Sequences:
    """``data`` as :class:`Sequences` (shape-based, traceable): ``(t, d)`` is one sequence,
    ``(s, t, d)`` are sequences of full length, ``(x, lengths)`` padded sequences."""
    if is_pair(data):
        return Sequences(jnp.asarray(data[0]), jnp.asarray(data[1], jnp.int32))
    x = jnp.asarray(data)
    if x.ndim == 2:
        x = x[None]
    return Sequences(x, jnp.full((x.shape[0],), x.shape[1], jnp.int32))


def host_sequences(data):
    """Concrete ``(x (s, t, d), lengths (s,))`` from the accepted forms, with checks."""
    if is_pair(data):
        x, lengths = np.asarray(data[0]), data[1]
        if x.ndim == 2:
            raise ValueError("data as (x, lengths) needs x of shape (n_sequences, n_steps, "
                             f"n_features); got x of shape {x.shape}.")
    else:
        x, lengths = np.asarray(data), None
        if x.ndim == 2:
            x = x[None]
    if x.ndim != 3:
        raise ValueError("data must be one sequence (n_steps, n_features), sequences (n_sequences, "
                         f"n_steps, n_features) or (x, lengths); got shape {x.shape}.")
    s, t = x.shape[:2]
    if s == 0 or t == 0 or x.shape[2] == 0:
        raise ValueError(f"data must have at least one sequence, step and feature; got shape {x.shape}.")
    if lengths is None:
        return x, np.full((s,), t, np.int32)
    lengths = np.asarray(lengths)
    if lengths.shape != (s,):
        raise ValueError(f"lengths must have shape ({s},), one per sequence; got {lengths.shape}.")
    if lengths.dtype.kind not in "iu" and not (
            lengths.dtype.kind == "f" and np.all(np.isfinite(lengths)) and np.all(lengths == np.round(lengths))):
        raise ValueError(f"lengths must be integers; got {lengths.dtype} values {lengths[:5]}.")
    for bad, what in ((lengths < 1, "must be >= 1"), (lengths > t, f"must be <= n_steps={t} (the padded axis)")):
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"lengths {what}; {int(bad.sum())} are not, the first at index {i} "
                             f"(length {lengths[i]}).")
    return x, lengths.astype(np.int32)
