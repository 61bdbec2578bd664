"""Small pytree helpers used across the engine."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def all_finite(tree) -> jnp.ndarray:
    """True when every floating-point leaf of ``tree`` is finite."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    if not leaves:
        return jnp.ones((), bool)
    return jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]).all()


def tree_select(pred, on_true, on_false):
    """Leafwise ``jnp.where(pred, on_true, on_false)`` for a scalar ``pred``."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def is_traced(*trees) -> bool:
    """True when any leaf is a tracer (inside jit / vmap / grad), i.e. values are not known."""
    return any(isinstance(x, jax.core.Tracer) for t in trees for x in jax.tree_util.tree_leaves(t))


def sliced(x, index):
    """``x[index]``; a concrete array on one device is sliced on the host and put back where it
    was, where JAX would compile a slicing program for each new shape (a tenth of a second in a
    new process)."""
    if isinstance(x, jax.Array) and not is_traced(x) and len(x.sharding.device_set) == 1:
        return jax.device_put(np.asarray(x)[index], x.sharding)
    return x[index]


def is_distributed(x) -> bool:
    """True for a concrete ``jax.Array`` spread over several devices (left where it is: host-side
    checks would copy it to one device, which a multi-host array does not even allow)."""
    return isinstance(x, jax.Array) and not is_traced(x) and len(x.sharding.device_set) > 1


def float_dtype(tree):
    """dtype of the first floating leaf of ``tree`` (the default float dtype when none)."""
    for x in jax.tree_util.tree_leaves(tree):
        if jnp.issubdtype(x.dtype, jnp.floating):
            return x.dtype
    return jnp.result_type(float)


def row_signature(data) -> tuple:
    """What every chunk or mini-batch of one fit shares: the pytree structure (a Corpus's shape
    included) and each leaf's row shape (all axes but the first) and dtype."""
    leaves, structure = jax.tree_util.tree_flatten(data)
    dtype = lambda a: a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype
    return structure, tuple((tuple(np.shape(a)[1:]), dtype(a)) for a in leaves)


def row_signature_difference(signature, first) -> tuple | None:
    """The first way ``signature`` differs from ``first`` (both :func:`row_signature`) as
    ``(what, this, first's)``, e.g. ``("row shape", (4,), (3,))``; None when they agree."""
    if signature[0] != first[0]:
        return "structure", signature[0], first[0]
    several = len(signature[1]) > 1
    for i, (this, then) in enumerate(zip(signature[1], first[1])):
        for what, a, b in zip(("row shape", "dtype"), this, then):
            if a != b:
                return (f"{what} of leaf {i}" if several else what), a, b
    return None
