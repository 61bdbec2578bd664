"""Small pytree helpers used across the engine."""
from __future__ import annotations

import jax
import jax.numpy as jnp


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
